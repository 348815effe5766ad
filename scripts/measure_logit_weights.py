"""Automated interpretability of logit weights beside activations (Bricken et al. 2023), per residual layer, for the
release SAE and the neuron basis, PCA and random directions (Cunningham et al. 2023's Fig. 2 baselines).

    .venv/bin/python scripts/measure_logit_weights.py --layers 20 26 --features 40 \\
        --out artifacts/logit_weights/l20_l26.json

For each layer: the release's chosen tied R = 2 dictionary (as notebook 02 with DICTIONARIES = "release"), PCA
fitted on the profile's ``fit_rows`` training activations, the neuron basis and random unit directions, all in both
signs where the notebook has them; ``--features`` features per method drawn as notebook 02 draws them
(``features_to_score``). Activations come from notebook 02's fragment pool (``fragments_profile``: cached, not
recomputed when notebook 02 has run); the explanation is notebook 02's offline one (``TokenExplainer`` on the same
records). Scores and controls: ``saelib.interp.logit_weights``. Prints one table per layer and writes the JSON.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

METHOD_NAMES = ("SAE", "neuron basis", "PCA", "random")


def _cell(e) -> str:
    return f"{e.mean:.3f} [{e.lo:.3f}, {e.hi:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, nargs="+", default=[20, 26], help="residual layers (release SAEs)")
    parser.add_argument("--features", type=int, default=40, help="features scored per method and layer")
    parser.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), choices=METHOD_NAMES)
    parser.add_argument("--profile", default="default", help="sizes of the fragment pool and the PCA fit")
    parser.add_argument("--out", type=Path, default=Path("artifacts/logit_weights/logit_weights.json"))
    args = parser.parse_args()
    if args.features < 2:
        parser.error("--features must be at least 2 (the shuffled control pairs each feature with the others)")

    import numpy as np
    import torch

    from saelib import dictionaries
    from saelib.activations.harvest import fragments_profile, harvest_profile
    from saelib.baselines.directions import fit_pca, neuron_basis, random_directions
    from saelib.core.artifacts import atomic_write_json
    from saelib.core.profiles import get_profile
    from saelib.interp.autointerp import ProtocolConfig
    from saelib.interp.comparison import features_to_score, fit_sample
    from saelib.interp.features import dictionary_size
    from saelib.interp.fragments import Fragments
    from saelib.interp.logit_weights import (
        DEFINITIONS,
        LOGIT_K,
        NEXT_TOKEN_POSITIONS,
        TextStatistics,
        logit_weights,
        score_features,
        summarize,
    )
    from saelib.model import load_model, mlp_post, model_name, model_weights_sha256, resid_post

    start = time.perf_counter()
    profile = get_profile(args.profile)
    if profile.sae is None or profile.interp is None:
        parser.error(f"profile {args.profile!r} has no SAE layers or interp sizes")
    missing = sorted(set(args.layers) - set(profile.sae.layers))
    if missing:
        parser.error(f"layers {missing} have no fragment pool in profile {args.profile!r}; use {profile.sae.layers}")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = load_model()
    all_hooks = [resid_post(layer) for layer in profile.sae.layers]  # the pool's key: notebook 02's hooks
    frag_store = fragments_profile(model, all_hooks, profile, progress=False)
    train_store = harvest_profile(model, all_hooks + [mlp_post(profile.sae.mlp_layer)], profile, progress=False)
    fragments = Fragments(frag_store, model.tokenizer, length=64)
    separator = frag_store.config.get("separator_id")
    ids = np.unique(fragments.tokens).tolist()
    text = TextStatistics(
        fragments.tokens, {t: fragments.token_string(t) for t in ids}, exclude=[] if separator is None else [separator]
    )
    print(f"{fragments.n} fragments, {text.n_candidates} candidate tokens; setup {time.perf_counter() - start:.0f} s")
    cfg = ProtocolConfig(seed=0)
    layers_out = []
    for layer in args.layers:
        hook = resid_post(layer)
        name = dictionaries.release_manifest()["chosen"][hook]
        sae = dictionaries.load_release(name, model_name=frag_store.config["model"], hook=hook)
        d = sae.cfg.d_in
        pca = fit_pca(fit_sample(train_store, hook, profile.interp.fit_rows, profile.seed))
        methods: dict[
            str, tuple[Any, dict]
        ] = {  # as saelib.interp.comparison.layer_dictionaries builds them (same fits, seeds and keys)
            "SAE": (sae, {"sae": name, "alpha": sae.cfg.alphas[0]}),
            "neuron basis": (neuron_basis(d), {"method": "neuron basis", "d": d}),
            "PCA": (pca, {"method": "pca", "rows": profile.interp.fit_rows, "seed": profile.seed}),
            "random": (random_directions(d, 2 * d, profile.seed), {"method": "random", "n": 2 * d}),
        }
        summaries, features_out = [], {}
        for method in args.methods:
            t0 = time.perf_counter()
            dictionary, key = methods[method]
            feats = features_to_score(dictionary_size(dictionary), args.features, seed=profile.seed)
            with torch.no_grad():
                directions = (sae.dictionary()[0] if method == "SAE" else dictionary.directions)[feats].detach()
            weights = logit_weights(model, directions).numpy()
            acts = fragments.activations(hook, dictionary, feats)  # [F, n_fragments, 64]
            scores = score_features(feats, weights, acts, text, cfg=cfg, tokenizer=model.tokenizer)
            summaries.append(summarize(method, scores))
            features_out[method] = {"key": key, "scores": [asdict(s) for s in scores]}
            print(f"  layer {layer} {method}: {time.perf_counter() - t0:.0f} s")
        print(f"\nlayer {layer} ({name}): mean over {args.features} features, 95% t interval over features")
        print(
            f"{'method':13s} {'score (AUROC)':>22s} {'shuffled control':>22s} {'advantage':>23s} "
            f"{'next-token':>22s} {'next-tok advantage':>23s} {'names':>6s} {'conc':>5s} {'text':>5s} never"
        )
        for s in summaries:
            print(
                f"{s.method:13s} {_cell(s.score):>22s} {_cell(s.shuffled):>22s} {_cell(s.advantage):>23s} "
                f"{_cell(s.next_token):>22s} {_cell(s.next_token_advantage):>23s} {s.naming_share.mean:6.2f} "
                f"{s.concentration.mean:5.2f} {s.in_text_share.mean:5.2f} {s.never_fires:5d}"
            )
        print("beats its shuffled control:", {s.method: s.beats_control for s in summaries})
        layers_out.append(
            {"layer": layer, "hook": hook, "summaries": [asdict(s) for s in summaries], "features": features_out}
        )
    seconds = round(time.perf_counter() - start, 1)
    out = {
        "description": "Logit-weight autointerp (scripts/measure_logit_weights.py, saelib.interp.logit_weights)",
        "config": {
            "layers": args.layers,
            "features": args.features,
            "methods": args.methods,
            "profile": args.profile,
            "logit_k": LOGIT_K,
            "next_token_positions": NEXT_TOKEN_POSITIONS,
            "protocol": asdict(cfg),
            "fragments": {"store": frag_store.dir.name, "n": fragments.n, "length": fragments.length},
            "candidates": text.n_candidates,
            "model": {"name": model_name(model), "weights_sha256": model_weights_sha256(model)},
        },
        "definitions": DEFINITIONS,
        "seconds": seconds,
        "layers": layers_out,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, out)
    print(f"\nwrote {args.out} in {seconds} s")


if __name__ == "__main__":
    main()
