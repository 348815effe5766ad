"""Feature absorption on the first-letter task (Chanin et al. 2024, "A is for Absorption"; SAEBench's absorption
metric) for the shipped dictionaries of residual layers, beside a random and a planted control dictionary.

    .venv/bin/python scripts/measure_absorption.py --layer 8 [--layer 14] [--words-per-letter 40]
        [--dictionary resid14-tied-r8-a2p74e-03] [--out artifacts/absorption/<name>.json]

For each layer: the chosen R = 2 tied dictionary of the release (``dictionaries/manifest.json``), any shipped
TopK R = 8 dictionary of the layer (``resid14-topk-r8`` at layer 14; skipped with a message when the release does
not have it yet), and any shipped dictionary of the layer named with ``--dictionary``. Every dictionary is measured
with the same words, probes and gate, and so are its two controls: a random dictionary of its shape and L0, and a
planted one whose first 26 latents are the probe directions. The definition and where it departs from SAEBench are
in ``saelib/interp/absorption.py``.

Residuals at the word tokens are cached per layer under ``artifacts/absorption/residuals-L<layer>-<hash>/``, keyed
by the model file, the words and the prompt settings, so a rerun (another dictionary, another threshold) costs no
forward pass. The JSON holds the config beside every result.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", type=int, action="append", required=True, help="residual layer (repeatable)")
    parser.add_argument("--words-per-letter", type=int, default=40, help="seeded sample of words per letter")
    parser.add_argument("--test-fraction", type=float, default=None, help="held-out words per letter (0.2)")
    parser.add_argument("--icl-examples", type=int, default=None, help="in-context examples per prompt (10)")
    parser.add_argument("--prompts-per-word", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="word sample, split and prompts")
    parser.add_argument("--min-probe-f1", type=float, default=None, help="letter gate (SAEBench: 0.6)")
    parser.add_argument("--batch-size", type=int, default=32, help="prompts per forward pass")
    parser.add_argument(
        "--dictionary",
        action="append",
        default=[],
        help="another shipped dictionary to measure, by name (repeatable; used at the layer of its hook)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON to write (default under artifacts/absorption/)")
    return parser.parse_args()


def cached_residuals(model, task, layers: list[int], config: dict, batch_size: int) -> dict:
    """layer -> residuals [rows, d] (numpy), read from the cache or computed in one pass for the missing layers."""
    import numpy as np

    from saelib.core.artifacts import atomic_save_npy, atomic_write_json, keyed_dir
    from saelib.interp.absorption import word_residuals

    folders = {layer: keyed_dir("absorption", f"residuals-L{layer}", {**config, "layer": layer}) for layer in layers}
    out = {}
    for layer, folder in folders.items():
        if (folder / "residuals.npy").exists():
            out[layer] = np.load(folder / "residuals.npy")
            print(f"layer {layer}: residuals from {folder}")
    missing = [layer for layer in layers if layer not in out]
    if missing:
        start = time.perf_counter()
        fresh = word_residuals(model, task, missing, batch_size=batch_size)
        print(f"residuals of {len(task)} prompts at layers {missing}: {time.perf_counter() - start:.0f} s")
        for layer in missing:
            out[layer] = fresh[layer].numpy()
            atomic_save_npy(folders[layer] / "residuals.npy", out[layer])
            atomic_write_json(folders[layer] / "config.json", {**config, "layer": layer})
    return out


def dictionaries_of(layer: int, model_name: str, extra: list[str]) -> list:
    """(name, SAE) of the layer's chosen R = 2 tied dictionary, of any shipped TopK R = 8 one, and of the shipped
    dictionaries named in ``extra`` whose hook is this layer's."""
    from saelib.dictionaries.shipped import load_manifest, load_release
    from saelib.model.hooks import resid_post

    hook = resid_post(layer)
    manifest = load_manifest()
    names = []
    if hook in manifest.chosen:
        names.append(manifest.chosen[hook])
    else:
        print(f"layer {layer}: the release chose no dictionary for {hook}; skipped")
    topk = manifest.find(hook=hook, architecture="topk", ratio=8.0)
    if topk:
        names += [d.name for d in topk]
    else:
        print(f"layer {layer}: no TopK R = 8 dictionary (resid{layer}-topk-r8) in the release manifest yet; skipped")
    shipped = {d.name: d for d in manifest.dictionaries}
    for name in extra:
        if name not in shipped:
            raise SystemExit(f"--dictionary {name}: no such shipped dictionary; the release has {sorted(shipped)}")
        if shipped[name].hook == hook and name not in names:
            names.append(name)
    return [(name, load_release(name, model_name=model_name, hook=hook)) for name in names]


def row(report) -> str:
    s = report.summary
    return (
        f"  {s.dictionary:28s} L0 {s.l0_on_words:6.1f}  probe F1 {s.probe_f1.mean:.3f}  "
        f"main-latent F1 {s.main_latent_f1.mean:.3f} [{s.main_latent_f1.lo:.3f}, {s.main_latent_f1.hi:.3f}] "
        f"firing {s.main_latent_firing_f1.mean:.3f} [{s.main_latent_firing_f1.lo:.3f}, "
        f"{s.main_latent_firing_f1.hi:.3f}]  k {s.mean_main_latents:.1f}  "
        f"absorption {s.absorption_rate.mean:.3f} [{s.absorption_rate.lo:.3f}, {s.absorption_rate.hi:.3f}] "
        f"(letters {s.letter_mean_absorption_rate:.3f})  fraction {s.absorption_fraction.mean:.3f} "
        f"[{s.absorption_fraction.lo:.3f}, {s.absorption_fraction.hi:.3f}]"
    )


def main() -> None:
    args = parse_args()
    import numpy as np

    from saelib.core.artifacts import atomic_write_json
    from saelib.core.paths import artifacts_dir
    from saelib.interp import absorption as ab
    from saelib.core.revision import code_revision
    from saelib.model.loader import load_model, model_name, model_weights_sha256

    start = time.perf_counter()
    settings = {
        "words_per_letter": args.words_per_letter,
        "test_fraction": ab.TEST_FRACTION if args.test_fraction is None else args.test_fraction,
        "icl_examples": ab.N_ICL_EXAMPLES if args.icl_examples is None else args.icl_examples,
        "prompts_per_word": args.prompts_per_word,
        "seed": args.seed,
        "min_word_length": ab.MIN_WORD_LENGTH,
        "template": ab.PROMPT_TEMPLATE,
        "answer": ab.ANSWER_TEMPLATE,
        "separator": ab.EXAMPLE_SEPARATOR,
    }
    min_f1 = ab.MIN_PROBE_F1 if args.min_probe_f1 is None else args.min_probe_f1
    model = load_model()
    name = model_name(model)
    words = ab.sample_words(
        ab.single_token_words(model.tokenizer, settings["min_word_length"]), args.words_per_letter, args.seed
    )
    train, test = ab.split_words(words, settings["test_fraction"], args.seed)
    task = ab.build_task(train, test, settings["icl_examples"], args.prompts_per_word, args.seed)
    cache_config = {
        "revision": code_revision("absorption"),
        "model": name,
        "weights_sha256": model_weights_sha256(model),
        **settings,
        "words": list(task.words),
    }
    residuals = cached_residuals(model, task, sorted(set(args.layer)), cache_config, args.batch_size)

    results = {}
    for layer in sorted(set(args.layer)):
        x = residuals[layer].astype(np.float64)
        probes = ab.train_letter_probes(x, task)
        letters = ab.probe_report(probes, min_f1)
        gated = "".join(p.letter for p in letters if p.passes_gate)
        failed = "".join(p.letter for p in letters if not p.passes_gate)
        print(f"\nlayer {layer}: {len(train)} train / {len(test)} test words, {len(task)} prompts")
        print("  probe F1: " + " ".join(f"{p.letter}:{p.probe_f1:.2f}" for p in letters))
        print(f"  gated (F1 >= {min_f1}): {gated or '-'} ({len(gated)}); failed: {failed or '-'}")
        layer_out: dict = {"probes": letters, "gated": gated, "failed_gate": failed, "dictionaries": {}}
        if not gated:
            print("  no letter passes the gate: nothing to score at this layer (the model may be too small)")
            results[layer] = layer_out
            continue
        for dict_name, sae in dictionaries_of(layer, name, args.dictionary):
            reports = {"sae": ab.measure_absorption(x, task, probes, sae, dict_name, min_probe_f1=min_f1)}
            l0 = reports["sae"].summary.l0_on_words
            base = ab.random_dictionary(sae.cfg.d_in, sae.cfg.n_features, x, l0, seed=args.seed)
            reports["random"] = ab.measure_absorption(x, task, probes, base, "random control", min_probe_f1=min_f1)
            planted = ab.planted_dictionary(base, probes)
            reports["planted"] = ab.measure_absorption(x, task, probes, planted, "planted control", min_probe_f1=min_f1)
            for report in reports.values():
                print(row(report))
            print("  per letter (SAE): letter probe-F1 main-F1 firing-F1 main-latents TP absorbed rate")
            for r in reports["sae"].letters:
                print(
                    f"    {r.letter} {r.probe_f1:.2f} {r.main_latent_f1:.2f} {r.main_latent_firing_f1:.2f} "
                    f"{list(r.main_latents)} "
                    f"{r.n_probe_true_positives} {r.n_full_absorption} {r.absorption_rate:.2f}"
                )
            layer_out["dictionaries"][dict_name] = reports
        results[layer] = layer_out

    out = args.out or artifacts_dir() / "absorption" / (
        f"absorption-L{'-'.join(map(str, sorted(set(args.layer))))}-w{args.words_per_letter}-s{args.seed}.json"
    )
    constants = {
        k: getattr(ab, k)
        for k in (
            "MIN_PROBE_F1",
            "MIN_GATED_LETTERS",
            "PROBE_C",
            "MAX_K",
            "F1_JUMP",
            "K_SPARSE_L1_DECAY",
            "SELECTION_FOLDS",
            "FIRING_EPS",
            "FULL_ABSORPTION_COS",
            "ABSORPTION_FRACTION_COS",
            "PROJECTION_SHARE",
            "MAX_ABSORBING_LATENTS",
        )
    }
    config = {
        "model": name,
        "weights_sha256": cache_config["weights_sha256"],
        "layers": sorted(set(args.layer)),
        **settings,
        "min_probe_f1": min_f1,
        "constants": constants,
        "n_train_words": len(train),
        "n_test_words": len(test),
        "train_words": train,
        "test_words": test,
    }
    seconds = round(time.perf_counter() - start, 1)
    atomic_write_json(out, {"config": config, "seconds": seconds, "layers": results})
    print(f"\nwrote {out} ({seconds} s)")


if __name__ == "__main__":
    main()
