# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-kernelspec
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
# ---

# %% [markdown]
# # 05 · Case studies: an apostrophe feature and a closing-parenthesis circuit
#
# **Question.** Cunningham et al. (2023, section 5) read single dictionary features closely: an **apostrophe
# feature** in layer 4 of Pythia-70M's residual stream, shown through token histograms per activation interval (the
# style of Bricken et al. 2023, "Detailed Investigations") and through its logit weights, which boost "s"; and a
# **closing-parenthesis circuit** across residual layers, found by ablating features in one layer and watching
# features in later layers change (the paper's code: `standard_metrics.build_ablation_graph`; feature indices in the
# paper are not reproducible across models). The paper gives both as figures, without numbers or baselines. This
# notebook tests whether SmolLM2's release dictionaries hold an apostrophe feature that matches its token better than
# neuron, PCA and ICA directions and whose ablation lowers what follows an apostrophe, and a closing-parenthesis
# feature that features of earlier dictionary layers feed through the blocks in between.
#
# **Method.** Features are found by rule, never by index (section 1). A *token proxy*, a predicate on the token's
# text, marks where a feature should fire; in each layer's release dictionary (the R = 2 tied SAE chosen per layer, notebook 07)
# the feature with the highest F1 between its activation mass on proxy tokens (precision) and the share of proxy
# tokens where it fires (recall) is the candidate. Activations come from notebook 02's pool of 64-token windows of
# held-out text, each run through the model alone; position 0 and the document separator are left out as
# everywhere. The pool's rows are split by **source document** (the unit of independence: several windows can come
# from one document) into a selection half, where features and baseline directions are chosen, and an evaluation
# half, where they are scored; intervals resample documents. Then, for the chosen features:
#
# 0. baselines chosen by the same rule on the same half (section 1): the best neuron (residual basis), PCA direction
#    and shipped ICA direction of any dictionary layer, each sign of a direction a separate candidate;
# 1. the activation range is cut into equal-width intervals (section 2); per interval the proxy's precision (Wilson
#    95% interval), the recall of thresholding at its lower edge, the commonest tokens, and examples drawn uniformly
#    from it (Bricken et al.'s interval sampling, not only top examples);
# 2. output side (section 3): the decoder direction's direct logit effect (through the final norm's gain and W_U; a
#    rough guide this far from the output), and the **ablation**: the feature's contribution removed where it fires,
#    the rest of the model run, and the change of the next token's log-probability against a random direction of
#    the same norm at the same positions (intervals over contexts);
# 3. the circuit (section 4): from the closing-parenthesis feature of a middle layer, candidate features of each
#    earlier dictionary layer are ranked by attribution (first-order effect of removing them on the target's
#    activation) and the top ones ablated exactly; those that lower the target significantly become nodes, traced
#    back again. Each edge is split into the **direct residual path** (the upstream contribution taken out of the
#    later layer's residual with no block rerun: the residual stream carrying it forward unchanged) and the
#    **mediated path** through the attention and MLP blocks in between (total minus direct).
#
# Section 5 decides each claim by a rule on these intervals.
#
# **Departures.** SmolLM2's tokenizer fuses the apostrophe with what follows ("'s", "'t", "'m" are single tokens;
# the curly "’" stands alone), so the proxy is "the token begins with an apostrophe", and the paper's "boosts s"
# can only show at standalone apostrophes. Our dictionary layers are 6 blocks apart (2, 8, 14, 20, 26), not adjacent.

# %% tags=["parameters"]
PROFILE: str = "default"  # dev | default | paper (see saelib/core/profiles.py)
DICTIONARIES: str = "release"  # "release" (the chosen shipped dictionary per layer) or "profile" (notebook 01)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from saelib import dictionaries
from saelib.activations.harvest import corpus_for_model, fragments_profile
from saelib.baselines.directions import fit_pca, random_directions
from saelib.baselines.shipped import load_shipped_ica
from saelib.core.check import check_between, regression
from saelib.core.plots import savefig
from saelib.experiments.case_studies import CaseStudyResults, case_study_verdicts
from saelib.experiments.notebook_setup import setup
from saelib.core.verdicts import print_verdicts, show_verdicts
from saelib.interp import case_studies as C
from saelib.interp.dashboard import feature_matrix
from saelib.interp.features import ordinary_rows
from saelib.model import model_name, resid_post
from saelib.model.forward import run_blocks
from saelib.model.lens import logit_lens, top_tokens

nb = setup(PROFILE, display_width=140)
profile, model, corpus, tok = nb.profile, nb.model, nb.corpus, nb.tokenizer
sizes = profile.case_studies
layers = list(profile.sae.layers)
hooks = {la: resid_post(la) for la in layers}
if DICTIONARIES == "release":
    chosen = dictionaries.release_manifest()["chosen"]
    saes = {la: dictionaries.load_release(chosen[h], model_name=model_name(model), hook=h) for la, h in hooks.items()}
else:
    saes = {la: dictionaries.load_chosen(PROFILE, h, model_name=model_name(model)) for la, h in hooks.items()}
pool = fragments_profile(model, list(hooks.values()), profile)
ids = np.asarray(pool.tokens).reshape(-1)
rows = ordinary_rows(pool)
tokens = torch.from_numpy(np.asarray(pool.tokens).astype(np.int64))
keep = torch.from_numpy(rows.reshape(tokens.shape))
documents = C.row_documents(pool, corpus_for_model(model))  # [rows] source document of each row
selection = C.split_documents(documents, seed=profile.seed)
sel_rows, eval_rows = rows & selection, rows & ~selection
N_BOOT = 2000
print(f"{len(tokens):,} windows of {pool.context_length} tokens ({int(rows.sum()):,} ordinary tokens) from "
      f"{len(np.unique(documents[rows])):,} documents; selection half {int(sel_rows.sum()):,} tokens in "
      f"{len(np.unique(documents[sel_rows])):,} documents, evaluation half {int(eval_rows.sum()):,} in "
      f"{len(np.unique(documents[eval_rows])):,}; dictionaries: "
      + ", ".join(f"L{la} {saes[la].cfg.n_features} features" for la in layers))

# %% [markdown]
# ## 1. Finding the features by rule
#
# For each layer and each proxy, the feature with the highest F1 on the **selection half** (precision = share of its
# activation mass on proxy tokens, recall = share of proxy tokens where it fires); `top precision` is the share of
# its 20 largest activations that are proxy tokens.

# %%
# NBVAL_IGNORE_OUTPUT
proxies = [C.APOSTROPHE, C.CLOSING_PARENTHESIS, C.OPENING_PARENTHESIS]
on = {p.name: p.mask(tok, ids) for p in proxies}
found, cols = [], {}
start = time.time()
for la in layers:
    acts, _ = feature_matrix(saes[la], pool, hooks[la], pool.n_rows)
    for name, scores in C.proxy_scores_many(acts, on, sel_rows).items():
        found.append({"layer": la, "proxy": name, **C.best_feature(scores).to_dict()})
    cols[la] = acts  # float16 [rows, features]; one layer is a few hundred MB at most
found = pd.DataFrame(found).astype({"feature": int})
print("proxy tokens in the selection half: " + ", ".join(f"{p.name} {int(on[p.name][sel_rows].sum()):,}" for p in proxies)
      + f" ({time.time() - start:.0f}s)")
display(found.pivot(index="layer", columns="proxy", values=["feature", "f1", "top_precision"]).round(3))

# %% [markdown]
# The apostrophe feature studied below is the best-matching one over all layers on the selection half (highest F1;
# the paper's was in an early layer). The circuit's target is the closing-parenthesis feature of the middle
# dictionary layer, so that two earlier dictionary layers can be traced.

# %%
# NBVAL_IGNORE_OUTPUT
apos = found[found.proxy == "apostrophe"].sort_values(["f1", "layer"], ascending=[False, True]).iloc[0]
A_LAYER, A_FEATURE = int(apos.layer), int(apos.feature)
T_LAYER = layers[len(layers) // 2]
T_FEATURE = int(found[(found.proxy == "closing parenthesis") & (found.layer == T_LAYER)].feature.iloc[0])
a_col = cols[A_LAYER][:, A_FEATURE].astype(np.float32)
t_col = cols[T_LAYER][:, T_FEATURE].astype(np.float32)
print(f"apostrophe feature: layer {A_LAYER}, feature {A_FEATURE} (selection half: F1 {apos.f1:.3f}, precision "
      f"{apos.precision:.3f}, recall {apos.recall:.3f}, density {apos.density:.2%})")
print(f"circuit target: layer {T_LAYER}, closing-parenthesis feature {T_FEATURE}")

# %% [markdown]
# ### Baselines, chosen by the same rule, scored out of sample
#
# In every dictionary layer the neuron basis, PCA (fitted on 16,384 selection-half tokens) and the shipped
# ICA give 576 directions each; a token's activation on a direction is its (centred) projection, clipped at 0, and
# each sign of a direction is a separate candidate, so a direction can match the proxy with either tail. The best
# candidate of each kind over all layers on the selection half is kept, as for the SAE. A random direction chosen
# the same way (576 random directions at the apostrophe feature's layer, both signs) is a negative control, and the
# proxy itself as an activation (1 on apostrophe tokens) a positive control. All are then scored on the evaluation
# half: F1 with a 95% interval from 2,000 bootstrap draws of its documents, the same draws for every direction so
# that differences are paired.

# %%
# NBVAL_IGNORE_OUTPUT
start = time.time()
fit_gen = np.random.default_rng(profile.seed)
sel_idx = np.flatnonzero(sel_rows)
fit_idx = np.sort(fit_gen.choice(sel_idx, min(len(sel_idx), 16384), replace=False))
on_apos = on["apostrophe"]
candidates: dict[str, list] = {}  # kind -> [selection F1, layer, index, sign, direction, center]
for la in layers:
    x = np.asarray(pool.activations(hooks[la]))
    d = x.shape[1]
    pca = fit_pca(torch.from_numpy(x[fit_idx].astype(np.float32)))
    ica = load_shipped_ica(hooks[la], width=d)
    kinds = {"neuron": (torch.eye(d), torch.zeros(d)), "PCA": (pca.directions[:d], pca.center),
             "ICA": (ica.directions, ica.center)}
    if la == A_LAYER:  # the negative control, at the apostrophe feature's layer, centred like PCA
        kinds["random direction"] = (random_directions(d, d, seed=profile.seed).directions, pca.center)
    for kind, (dirs, center) in kinds.items():
        f1s = C.projection_f1(dirs, center, x[sel_rows], on_apos[sel_rows])
        b = int(np.argmax(f1s))  # ties: the lower index, as best_feature
        j, sign = b % len(dirs), 1 if b < len(dirs) else -1
        if kind not in candidates or f1s[b] > candidates[kind][0]:
            candidates[kind] = [float(f1s[b]), la, j, sign, sign * dirs[j].float(), center.float()]
    del x
sae_name = f"SAE L{A_LAYER}/{A_FEATURE}"
eval_cols = {sae_name: a_col[eval_rows]}
chosen_on_selection = {sae_name: float(apos.f1)}
for kind, (f1_sel, la, j, sign, direction_k, center) in candidates.items():
    x_eval = torch.from_numpy(np.asarray(pool.activations(hooks[la]))[eval_rows].astype(np.float32))
    name = f"{kind} L{la}/{'+' if sign > 0 else '-'}{j}"
    eval_cols[name] = torch.relu((x_eval - center) @ direction_k).numpy()
    chosen_on_selection[name] = f1_sel
eval_cols["proxy itself"] = on_apos[eval_rows].astype(np.float32)
chosen_on_selection["proxy itself"] = 1.0
f1_boot = C.proxy_f1_bootstrap(eval_cols, on_apos[eval_rows], documents[eval_rows], n_boot=N_BOOT,
                               seed=profile.seed)
baseline_names = [n for n in f1_boot.names if n.split(" ")[0] in ("neuron", "PCA", "ICA")]
best_baseline = max(baseline_names, key=lambda n: f1_boot.estimate(n).mean)
random_name = next(n for n in f1_boot.names if n.startswith("random"))

oos = pd.DataFrame([{"direction": n, "F1 selection half": chosen_on_selection[n],
                     "F1 evaluation half": f1_boot.estimate(n).mean, "lo": f1_boot.estimate(n).lo,
                     "hi": f1_boot.estimate(n).hi,
                     f"minus {best_baseline}": f1_boot.difference(n, best_baseline).mean,
                     "diff lo": f1_boot.difference(n, best_baseline).lo,
                     "diff hi": f1_boot.difference(n, best_baseline).hi} for n in f1_boot.names])
sae_vs_base = f1_boot.difference(sae_name, best_baseline)
print(f"apostrophe tokens: selection half {int(on_apos[sel_rows].sum()):,} in "
      f"{len(np.unique(documents[sel_rows & on_apos])):,} documents, evaluation half {int(on_apos[eval_rows].sum()):,} "
      f"in {len(np.unique(documents[eval_rows & on_apos])):,} ({time.time() - start:.0f}s)")
display(oos.round(3))

# %% [markdown]
# **Reading.** Selection on one half and scoring on the other removes the in-sample advantage that choosing the
# best of ~1,000 candidates gives: compare each direction's two F1 columns. The SAE feature (layer 8 again) keeps
# its F1 out of sample (about 0.85 chosen, 0.87 scored); the best baseline is a negative-sign ICA direction at
# layer 2 at about a third of that, and the best neuron and PCA direction stay near the random direction's level
# (about 0.1). The SAE feature's margin over the best baseline is the number the apostrophe verdict decides on.

# %% [markdown]
# ## 2. The apostrophe feature across its activation range
#
# Equal-width intervals of (0, max]: how many tokens fall in each, what share are apostrophe tokens (precision,
# Wilson 95% interval), how many of all apostrophe tokens lie above the interval's lower edge (recall), and the
# commonest tokens. Low intervals hold most of the tokens, so the left panel shows each interval's composition as
# shares with its count on top.

# %%
# NBVAL_IGNORE_OUTPUT
table = C.interval_table(a_col, on["apostrophe"], ids, tok, n_bins=sizes.interval_bins)
display(table.drop(columns=["lo", "hi"]).round(3))


def interval_figure(table: pd.DataFrame, col: np.ndarray, mask: np.ndarray, title: str, name: str) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    x = np.arange(len(table))
    share = table.proxy / table.tokens.clip(lower=1)
    ax1.bar(x, share, color="#e65a14", label="proxy tokens")
    ax1.bar(x, 1 - share, bottom=share, color="#bbbbbb", label="other tokens")
    for i, n in enumerate(table.tokens):
        ax1.text(i, 1.02, f"{n:,}", ha="center", fontsize=7)
    ax1.set_xticks(x, [f"{v:.1f}" for v in table.lo], fontsize=7)
    ax1.set_xlabel("interval (lower edge of activation)")
    ax1.set_ylabel("share of tokens")
    ax1.set_ylim(0, 1.1)
    ax1.legend(frameon=False, fontsize=8, loc="lower right")
    err = [(table.precision - table.precision_lo).clip(lower=0), (table.precision_hi - table.precision).clip(lower=0)]
    ax2.errorbar(x, table.precision, yerr=err,
                 fmt="o-", label="precision in interval (95% CI)")
    ax2.plot(x, table.recall_above_lo, "s--", label="recall of activation > lower edge")
    ax2.set_xticks(x, [f"{v:.1f}" for v in table.lo], fontsize=7)
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("interval (lower edge of activation)")
    ax2.legend(frameon=False, fontsize=8)
    fig.suptitle(title)
    savefig(fig, name, PROFILE)
    plt.show()


interval_figure(table, a_col, on["apostrophe"], f"Layer {A_LAYER}, feature {A_FEATURE}: apostrophe proxy per "
                "activation interval", "05_apostrophe_intervals")
display(C.interval_examples(a_col, ids, pool.context_length, tok, n_bins=5, per_bin=2, seed=profile.seed))

# %% [markdown]
# **Reading.** In the release dictionaries the apostrophe feature sits at layer 8 (of 30; the paper's was at layer 4
# of 6). Above about a fifth of its maximum 85-100% of the tokens in each interval are apostrophe tokens, and the top
# intervals are possessive "'s"; the lowest interval, which holds most of its firings, is dominated by possessive words without
# an apostrophe (" his", " its"): at low activation the feature reads as "possessive" rather than "apostrophe". Recall
# falls steadily with the threshold, so a rule on high activations alone would miss most apostrophes.

# %% [markdown]
# ## 3. What the apostrophe feature does to the output
#
# Direct logit effect of its decoder direction (a rough guide at an early layer: the blocks after it are skipped),
# then the ablation on a random sample of the windows where it fires: the tokens whose probability falls most on
# average, and the change of the actual next token's log-probability against the same-norm random direction.

# %%
# NBVAL_IGNORE_OUTPUT
start = time.time()
direction = C.feature_directions(saes[A_LAYER])[A_FEATURE]
lens = top_tokens(tok, logit_lens(model, hooks[A_LAYER])(direction[None])[0], 10)
print("direct logit effect, boosts:", [t for t, _ in lens["boosts"]])
print("direct logit effect, suppresses:", [t for t, _ in lens["suppresses"]])
fires = torch.from_numpy((a_col.reshape(tokens.shape) > 0) & keep.numpy())
firing_windows = torch.nonzero(fires[:, :-1].any(1))[:, 0]
rng = np.random.default_rng(profile.seed)
n_ablate = min(len(firing_windows), sizes.ablation_windows)
sample = torch.as_tensor(np.sort(rng.choice(firing_windows.numpy(), n_ablate, replace=False)))
ablation = C.next_token_ablation(model, saes[A_LAYER], hooks[A_LAYER], tokens[sample], A_FEATURE, keep[sample],
                                 seed=profile.seed)


def position_documents(result: C.AblationResult, windows: torch.Tensor) -> np.ndarray:
    """The source document of each ablated position (the cluster its interval resamples)."""
    return documents[windows.numpy()[result.context] * pool.context_length + result.position]


falls = top_tokens(tok, -ablation.mean_delta_prob, 10)["boosts"]
summary = ablation.summary(clusters=position_documents(ablation, sample))
print("tokens whose probability falls most when it is ablated:", [(t, round(v, 4)) for t, v in falls])
print(f"next-token log-probability change: {summary['delta_next_token']:+.3f} [{summary['delta_lo']:+.3f}, "
      f"{summary['delta_hi']:+.3f}] at {summary['positions']} positions in {summary['contexts']} windows of "
      f"{summary['clusters']} documents; random "
      f"direction of the same norm {summary['control_delta']:+.3f}; difference {summary['minus_control']:+.3f} "
      f"[{summary['minus_control_lo']:+.3f}, {summary['minus_control_hi']:+.3f}] ({time.time() - start:.0f}s)")

# %% [markdown]
# SmolLM2 writes "'s" as one token, so "s" can only follow a *standalone* apostrophe (' or ’). The paper's "boosts s"
# is tested there: the same ablation restricted to standalone apostrophes where the feature fires, the change of
# log p("s") there against the same-norm random direction (interval over documents), and the tokens whose
# probability falls most at those positions.

# %%
# NBVAL_IGNORE_OUTPUT
start = time.time()
standalone = np.array([t.strip() in ("'", "\u2019") for t in (tok.decode([int(i)]) for i in range(len(tok)))])[ids]
at_standalone = keep & torch.from_numpy(standalone.reshape(tokens.shape))
s_windows = torch.nonzero((fires & at_standalone)[:, :-1].any(1))[:, 0]
s_windows = torch.as_tensor(np.sort(rng.choice(s_windows.numpy(), min(len(s_windows), sizes.standalone_windows),
                                               replace=False)))
s_id = tok.encode("s", add_special_tokens=False)
s_ablation = C.next_token_ablation(model, saes[A_LAYER], hooks[A_LAYER], tokens[s_windows], A_FEATURE,
                                   at_standalone[s_windows], seed=profile.seed, watch=s_id[0])
s_summary = s_ablation.summary(clusters=position_documents(s_ablation, s_windows))
s_falls = top_tokens(tok, -s_ablation.mean_delta_prob, 10)["boosts"]
next_ids = tokens[:, 1:][(fires & at_standalone)[:, :-1]]
print(f"standalone apostrophes in the pool: {int((standalone & rows).sum())}; the feature fires on "
      f"{((a_col > 0) & standalone & rows).sum() / max(1, (standalone & rows).sum()):.0%} of them; the next token "
      f"there is 's' in {float((next_ids == s_id[0]).float().mean()):.0%} of cases")
print("tokens whose probability falls most when it is ablated at standalone apostrophes:",
      [(t, round(v, 4)) for t, v in s_falls])
print(f"next-token log-probability change there: {s_summary['delta_next_token']:+.3f} [{s_summary['delta_lo']:+.3f}, "
      f"{s_summary['delta_hi']:+.3f}] at {s_summary['positions']} positions in {s_summary['contexts']} windows of "
      f"{s_summary['clusters']} documents; random direction {s_summary['control_delta']:+.3f}; difference "
      f"{s_summary['minus_control']:+.3f} [{s_summary['minus_control_lo']:+.3f}, {s_summary['minus_control_hi']:+.3f}]")
print(f"log p('s') change there: {s_summary['watch']:+.3f} [{s_summary['watch_lo']:+.3f}, {s_summary['watch_hi']:+.3f}];"
      f" random direction {s_summary['watch_control']:+.3f}; difference {s_summary['watch_minus_control']:+.3f} "
      f"[{s_summary['watch_minus_control_lo']:+.3f}, {s_summary['watch_minus_control_hi']:+.3f}] "
      f"({time.time() - start:.0f}s)")

# %% [markdown]
# Negative control for the output rule: a random feature of the same layer, among those that fire at kept positions
# of the same windows at least half as often as the apostrophe feature, ablated the same way where it fires and
# compared with the same-norm random direction.

# %%
# NBVAL_IGNORE_OUTPUT
start = time.time()
sample_rows = (sample.numpy()[:, None] * pool.context_length + np.arange(pool.context_length)).reshape(-1)
sample_rows = sample_rows[rows[sample_rows]]
counts = (cols[A_LAYER][sample_rows] > 0).sum(0)
firing = np.flatnonzero(counts >= counts[A_FEATURE] / 2)  # fires at least half as often here as the feature
R_FEATURE = int(rng.choice(firing[firing != A_FEATURE]))
r_ablation = C.next_token_ablation(model, saes[A_LAYER], hooks[A_LAYER], tokens[sample], R_FEATURE, keep[sample],
                                   seed=profile.seed)
r_summary = r_ablation.summary(clusters=position_documents(r_ablation, sample))
print(f"random feature L{A_LAYER}/{R_FEATURE}: next-token log-prob change minus the random direction's "
      f"{r_summary['minus_control']:+.3f} [{r_summary['minus_control_lo']:+.3f}, {r_summary['minus_control_hi']:+.3f}]"
      f" at {r_summary['positions']} positions in {r_summary['clusters']} documents ({time.time() - start:.0f}s)")

# %% [markdown]
# ## 4. A closing-parenthesis circuit across residual layers
#
# The target's strongest windows; each earlier dictionary layer's candidates ranked by attribution, the top 8
# ablated exactly. Eight random features of the same layer that fire with the node (at least once per four
# windows) are ablated the same way; a candidate becomes a node (at most 2 per node) when its ablation lowers the
# target with the 95% interval below zero *and* lowers it more than the strongest of those controls in the same
# windows (`beyond_control`, a paired interval below zero). Its own inputs are traced in the next earlier layer. A
# ninth random co-firing feature goes through the same rule as the negative control. `effect` is the relative change of
# the target's summed activation where it fires (−0.5: halved); `direct` is the same change when the upstream
# contribution is taken out of the later layer's residual with no block rerun (the residual stream carrying it
# forward), `mediated` = effect − direct (what the blocks in between add). Intervals resample the windows' documents
# (a window is labelled by the document of its first token).

# %%
# NBVAL_IGNORE_OUTPUT
start = time.time()
# check the partial forward against the model's own: the residual at the target layer from the first layer's
x_first = C.residuals_at(model, tokens[:4], [layers[0], T_LAYER])
gap = (run_blocks(model, x_first[layers[0]], layers[0], T_LAYER) - x_first[T_LAYER]).abs().max().item()
check_between("partial forward matches the model (max abs diff)", gap, 0, 1e-3)
t_strength = (t_col.reshape(tokens.shape) * keep.numpy()).max(1)
windows = torch.as_tensor(np.argsort(-t_strength, kind="stable")[: sizes.circuit_windows].copy())
window_docs = documents.reshape(tokens.shape)[windows.numpy(), 0]
trace = C.trace_circuit(model, saes, tokens[windows], (T_LAYER, T_FEATURE), layers,
                        n_candidates=sizes.circuit_candidates, branch=sizes.circuit_branch,
                        keep=keep[windows], groups=window_docs, n_controls=sizes.circuit_controls,
                        seed=profile.seed)
edges, circuit_controls = trace.edges, trace.controls
label_of = {}
for la, f in {(T_LAYER, T_FEATURE), *zip(edges.source_layer, edges.source)}:
    col = cols[la][:, f].astype(np.float32)
    label_of[(la, f)] = C.top_token_types(col, ids, tok)
edges["source_tokens"] = [label_of[(la, f)] for la, f in zip(edges.source_layer, edges.source)]
edges["source_proxy"] = ["closing" if C.high_interval_precision(cols[la][:, f].astype(np.float32),
                                                                  on["closing parenthesis"]).mean >= 0.5
                         else "opening" if C.high_interval_precision(cols[la][:, f].astype(np.float32),
                                                                     on["opening parenthesis"]).mean >= 0.5
                         else "other" for la, f in zip(edges.source_layer, edges.source)]
control_passes = int(circuit_controls.kept.sum()) if len(circuit_controls) else 0
print(f"target L{T_LAYER}/{T_FEATURE}: {label_of[(T_LAYER, T_FEATURE)]}; {len(np.unique(window_docs))} documents "
      f"among the {len(windows)} windows ({time.time() - start:.0f}s)")
edge_cols = ["source_layer", "source", "target_layer", "target", "source_proxy", "source_tokens", "attribution",
             "effect", "effect_lo", "effect_hi", "beyond_control", "beyond_control_lo", "beyond_control_hi",
             "direct", "direct_lo", "direct_hi", "mediated", "mediated_lo", "mediated_hi", "source_density"]
display(edges[edge_cols].round(3))
direct_share = float(edges.direct.sum() / edges.effect.sum()) if len(edges) else float("nan")
print(f"direct residual path: {direct_share:.0%} of the summed edge effects; negative control (a held-out random "
      f"co-firing feature per node, through the edge rule): " + "; ".join(
          f"L{e.source_layer}/{e.source} -> L{e.target_layer}/{e.target} {e.effect:+.1%} "
          f"[{e.effect_lo:+.1%}, {e.effect_hi:+.1%}], beyond the controls {e.beyond_control:+.1%} "
          f"[{e.beyond_control_lo:+.1%}, {e.beyond_control_hi:+.1%}] ({'kept' if e.kept else 'not kept'})"
          for e in circuit_controls.itertuples()))

# %%
fig, ax = plt.subplots(figsize=(9, 4))
nodes = sorted(label_of, key=lambda n: (n[0], n[1]))
ys = {}
for la in sorted({n[0] for n in nodes}):
    members = [n for n in nodes if n[0] == la]
    for i, n in enumerate(members):
        ys[n] = (i - (len(members) - 1) / 2) * 1.2
for e in edges.itertuples():
    a, b = (e.source_layer, e.source), (e.target_layer, e.target)
    ax.annotate("", xy=(b[0], ys[b]), xytext=(a[0], ys[a]),
                arrowprops={"arrowstyle": "-|>", "lw": 0.5 + 6 * min(1.0, -e.effect), "color": "#e65a14", "alpha": 0.8})
    ax.text((a[0] + b[0]) / 2, (ys[a] + ys[b]) / 2 + 0.12, f"{e.effect:+.0%}", fontsize=8, ha="center")
for n in nodes:
    ax.scatter(n[0], ys[n], s=300, color="#333", zorder=3)
    ax.text(n[0], ys[n] - 0.35, f"L{n[0]}/{n[1]}\n{label_of[n]}", ha="center", va="top", fontsize=7)
ax.set_xticks(sorted({n[0] for n in nodes}), [f"layer {la}" for la in sorted({n[0] for n in nodes})])
ax.set_yticks([])
ax.set_ylim(min(ys.values()) - 1.2, max(ys.values()) + 0.6)
ax.set_title("Closing-parenthesis circuit: edge = relative change of the later feature when the earlier is ablated")
savefig(fig, "05_parenthesis_circuit", PROFILE)
plt.show()

# %% [markdown]
# **Reading.** Each hop is dominated by the same detector one dictionary layer earlier (the closing-parenthesis
# feature at the earlier layer carries most of the target), and an opening-parenthesis path contributes a smaller,
# significant share (a few percent at the target). Ablation effects are exact (the
# blocks in between are rerun); attribution only chose which candidates to ablate. The `direct` column says how
# much of each edge is the residual stream carrying the earlier detector's direction forward to the later
# detector's encoder: about 70% of the summed edge effects. The closing-to-closing hops are mostly that (about
# −64% of −83% at L8 → L14, −53% of −81% at L2 → L8), with the blocks in between adding a significant fifth to a
# third; the opening-parenthesis feature's edge into the closing target has no direct part at all (the direct path
# acts position by position, and the two fire on different tokens), so it is the one edge carried wholly by
# attention. Random features that fire with a node move it by about 1% (the negative-control line printed under
# the edge table), with intervals that can exclude 0 at 32 windows, so "interval below 0" alone would admit
# unrelated features; the edge rule therefore asks each edge to beat the strongest of eight random co-firing
# features in the same windows. Every kept edge does, the smallest (the opening-parenthesis feature into the
# closing target, −4%) by about 3 points, and the ninth random feature held out as the negative control is kept
# at no node.
#
# The target itself, read the same way as the apostrophe feature:

# %%
t_table = C.interval_table(t_col, on["closing parenthesis"], ids, tok, n_bins=sizes.interval_bins)
interval_figure(t_table, t_col, on["closing parenthesis"], f"Layer {T_LAYER}, feature {T_FEATURE}: closing-"
                "parenthesis proxy per activation interval", "05_parenthesis_intervals")

# %%
# Regression values from the committed run; the tables above are not compared digit for digit. Across CPUs the
# ablation difference moves in its third decimal (-0.124 against -0.125); 0.02 is twenty times that and a fifth of
# the interval's half-width. The ablation difference is the mean over firing positions (intervals clustered by
# document).
regression("apostrophe feature: evaluation-half F1", float(f1_boot.estimate(sae_name).mean), 0.875, profile=PROFILE, atol=0.02)
regression("apostrophe feature minus the best baseline: evaluation-half F1", float(sae_vs_base.mean), 0.541,
           profile=PROFILE, atol=0.02)
regression("apostrophe feature: apostrophe precision above half max",
           C.high_interval_precision(a_col, on["apostrophe"]).mean, 0.883, profile=PROFILE, atol=0.02)
regression("ablating it: next-token log-prob change minus the random direction's", summary["minus_control"], -0.113,
           profile=PROFILE, atol=0.02)
# this profile keeps two upstream features per node over two hops (L8, L2): 6 edges is the most the trace returns
regression("closing-parenthesis circuit: significant edges", len(edges), 6, profile=PROFILE)
regression("closing-parenthesis circuit: direct share of the summed edge effects", direct_share, 0.714,
           profile=PROFILE, atol=0.02)

# %% [markdown]
# ## 5. Verdict
#
# The paper gives these case studies as figures without summary numbers, so each verdict decides by a rule on
# intervals, stated in its `rule` line: **apostrophe feature** reproduced when the SAE feature chosen on the
# selection half beats the best neuron, PCA or ICA direction chosen the same way on the evaluation half's F1, with
# the paired difference's 95% interval (documents resampled) above 0 (partly: above every baseline's point estimate
# only); **output effect** counts two parts, each only when its interval excludes 0 in the claimed direction:
# ablation lowers the next token's log-probability more than a same-norm random direction, and it lowers log p("s")
# at standalone apostrophes more than the random direction does (reproduced: both; partly: one); **circuit**
# reproduced when significant ablation edges reach every earlier dictionary layer *and* each hop has an edge whose
# mediated part (total minus the direct residual path) is significantly negative, i.e. more than the residual stream
# carrying the earlier detector forward (partly: edges, but not that).
# For each claim the table also states its rule, its precondition, a negative and a positive control, and the unit
# its intervals resample; a "none" there marks a test that cannot fail, or cannot decide, as designed.
# The rules are coded in `saelib.experiments.case_studies.case_study_verdicts`.

# %%
# NBVAL_IGNORE_OUTPUT
results = CaseStudyResults(
    layers=layers, apostrophe_layer=A_LAYER, target_layer=T_LAYER, apostrophe_col=a_col, on_apostrophe=on_apos,
    documents=documents, selection_rows=sel_rows, evaluation_rows=eval_rows, selection_f1=float(apos.f1),
    f1_boot=f1_boot, sae_name=sae_name, baseline_names=baseline_names, best_baseline=best_baseline,
    random_name=random_name, summary=summary, s_summary=s_summary, s_falls=s_falls, random_feature=R_FEATURE,
    r_summary=r_summary, edges=edges, circuit_controls=circuit_controls, control_passes=control_passes,
    window_docs=window_docs, direct_share=direct_share)
verdicts = case_study_verdicts(results)
show_verdicts(verdicts)

# %%
# stable output: the lines under each verdict are its rule, precondition, controls and unit as written in the
# code (thresholds, not measurements)
print_verdicts(verdicts)
