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
# Cunningham et al. (section 5) read single dictionary features closely: an **apostrophe feature** in layer 4 of
# Pythia-70M's residual stream, shown through token histograms per activation interval (Bricken et al.'s style) and
# through its logit weights, which boost "s"; and a **closing-parenthesis circuit** across residual layers, found by
# ablating features in one layer and watching features in later layers change (the paper's code:
# `standard_metrics.build_ablation_graph`; feature indices in the paper are not reproducible across models).
#
# **Protocol here.** Features are found by rule, never by index. A *token proxy*, a predicate on the token's text,
# marks where a feature should fire; in each layer's release dictionary (the R = 2 tied SAE chosen in notebook 01)
# the feature with the highest F1 between its activation mass on proxy tokens (precision) and the share of proxy
# tokens where it fires (recall) is the candidate. Activations come from notebook 02's pool of 64-token windows of
# held-out text, each run through the model alone; position 0 and the document separator are left out as
# everywhere. Then, for the chosen features:
#
# 1. the activation range is cut into equal-width intervals; per interval the proxy's precision (Wilson 95%
#    interval), the recall of thresholding at its lower edge, the commonest tokens, and examples drawn uniformly
#    from it (Bricken et al.'s interval sampling, not only top examples);
# 2. output side: the decoder direction's direct logit effect (through the final norm's gain and W_U; a rough guide
#    this far from the output), and the **ablation**: the feature's contribution removed where it fires, the rest
#    of the model run, and the change of the next token's log-probability against a random direction of the same
#    norm at the same positions (intervals over contexts);
# 3. the circuit: from the closing-parenthesis feature of a middle layer, candidate features of each earlier
#    dictionary layer are ranked by attribution (first-order effect of removing them on the target's activation)
#    and the top ones ablated exactly; those that lower the target significantly become nodes, traced back again.
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
from saelib.activations.harvest import fragments_profile
from saelib.core.check import check_between, regression
from saelib.core.plots import savefig
from saelib.core.profiles import get_profile
from saelib.core.verdicts import Verdict, print_verdicts, show_verdicts
from saelib.interp import case_studies as C
from saelib.interp.dashboard import feature_matrix
from saelib.interp.features import ordinary_rows
from saelib.model import load_model, model_name, resid_post
from saelib.model.forward import run_blocks
from saelib.model.lens import logit_lens, top_tokens

start_all = time.time()
profile = get_profile(PROFILE)
sizes = profile.case_studies
torch.manual_seed(profile.seed)
pd.set_option("display.width", 140)
model = load_model(device=profile.device)
tok = model.tokenizer
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
print(f"{len(tokens):,} windows of {pool.context_length} tokens ({int(rows.sum()):,} ordinary tokens); dictionaries: "
      + ", ".join(f"L{la} {saes[la].cfg.n_features} features" for la in layers))

# %% [markdown]
# ## 1. Finding the features by rule
#
# For each layer and each proxy, the feature with the highest F1 (precision = share of its activation mass on proxy
# tokens, recall = share of proxy tokens where it fires); `top precision` is the share of its 20 largest
# activations that are proxy tokens.

# %%
# NBVAL_IGNORE_OUTPUT
proxies = [C.APOSTROPHE, C.CLOSING_PARENTHESIS, C.OPENING_PARENTHESIS]
on = {p.name: p.mask(tok, ids) for p in proxies}
found, cols = [], {}
start = time.time()
for la in layers:
    acts, _ = feature_matrix(saes[la], pool, hooks[la], pool.n_rows)
    for name, scores in C.proxy_scores_many(acts, on, rows).items():
        found.append({"layer": la, "proxy": name, **C.best_feature(scores).to_dict()})
    cols[la] = acts  # float16 [rows, features]; one layer is a few hundred MB at most
found = pd.DataFrame(found).astype({"feature": int})
print("proxy tokens in the pool: " + ", ".join(f"{p.name} {int(on[p.name][rows].sum()):,}" for p in proxies)
      + f" ({time.time() - start:.0f}s)")
display(found.pivot(index="layer", columns="proxy", values=["feature", "f1", "top_precision"]).round(3))

# %% [markdown]
# The apostrophe feature studied below is the best-matching one over all layers (highest F1; the paper's was in an
# early layer). The circuit's target is the closing-parenthesis feature of the middle dictionary layer, so that two
# earlier dictionary layers can be traced.

# %%
# NBVAL_IGNORE_OUTPUT
apos = found[found.proxy == "apostrophe"].sort_values(["f1", "layer"], ascending=[False, True]).iloc[0]
A_LAYER, A_FEATURE = int(apos.layer), int(apos.feature)
T_LAYER = layers[len(layers) // 2]
T_FEATURE = int(found[(found.proxy == "closing parenthesis") & (found.layer == T_LAYER)].feature.iloc[0])
a_col = cols[A_LAYER][:, A_FEATURE].astype(np.float32)
t_col = cols[T_LAYER][:, T_FEATURE].astype(np.float32)
print(f"apostrophe feature: layer {A_LAYER}, feature {A_FEATURE} (F1 {apos.f1:.3f}, precision {apos.precision:.3f}, "
      f"recall {apos.recall:.3f}, density {apos.density:.2%})")
print(f"circuit target: layer {T_LAYER}, closing-parenthesis feature {T_FEATURE}")

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
falls = top_tokens(tok, -ablation.mean_delta_prob, 10)["boosts"]
summary = ablation.summary()
print("tokens whose probability falls most when it is ablated:", [(t, round(v, 4)) for t, v in falls])
print(f"next-token log-probability change: {summary['delta_next_token']:+.3f} [{summary['delta_lo']:+.3f}, "
      f"{summary['delta_hi']:+.3f}] at {summary['positions']} positions in {summary['contexts']} windows; random "
      f"direction of the same norm {summary['control_delta']:+.3f}; difference {summary['minus_control']:+.3f} "
      f"[{summary['minus_control_lo']:+.3f}, {summary['minus_control_hi']:+.3f}] ({time.time() - start:.0f}s)")

# %% [markdown]
# SmolLM2 writes "'s" as one token, so "s" can only follow a *standalone* apostrophe (' or ’). The paper's "boosts s"
# is tested there: the same ablation restricted to standalone apostrophes where the feature fires, and the tokens
# whose probability falls most at those positions.

# %%
# NBVAL_IGNORE_OUTPUT
start = time.time()
standalone = np.array([t.strip() in ("'", "\u2019") for t in (tok.decode([int(i)]) for i in range(len(tok)))])[ids]
at_standalone = keep & torch.from_numpy(standalone.reshape(tokens.shape))
s_windows = torch.nonzero((fires & at_standalone)[:, :-1].any(1))[:, 0]
s_windows = torch.as_tensor(np.sort(rng.choice(s_windows.numpy(), min(len(s_windows), sizes.standalone_windows),
                                               replace=False)))
s_ablation = C.next_token_ablation(model, saes[A_LAYER], hooks[A_LAYER], tokens[s_windows], A_FEATURE,
                                   at_standalone[s_windows], seed=profile.seed)
s_summary = s_ablation.summary()
s_falls = top_tokens(tok, -s_ablation.mean_delta_prob, 10)["boosts"]
s_id = tok.encode("s", add_special_tokens=False)
next_ids = tokens[:, 1:][(fires & at_standalone)[:, :-1]]
print(f"standalone apostrophes in the pool: {int((standalone & rows).sum())}; the feature fires on "
      f"{((a_col > 0) & standalone & rows).sum() / max(1, (standalone & rows).sum()):.0%} of them; the next token "
      f"there is 's' in {float((next_ids == s_id[0]).float().mean()):.0%} of cases")
print("tokens whose probability falls most when it is ablated at standalone apostrophes:",
      [(t, round(v, 4)) for t, v in s_falls])
print(f"next-token log-probability change there: {s_summary['delta_next_token']:+.3f} [{s_summary['delta_lo']:+.3f}, "
      f"{s_summary['delta_hi']:+.3f}] at {s_summary['positions']} positions in {s_summary['contexts']} windows; random "
      f"direction {s_summary['control_delta']:+.3f}; difference {s_summary['minus_control']:+.3f} "
      f"[{s_summary['minus_control_lo']:+.3f}, {s_summary['minus_control_hi']:+.3f}] ({time.time() - start:.0f}s)")

# %% [markdown]
# ## 4. A closing-parenthesis circuit across residual layers
#
# The target's strongest windows; each earlier dictionary layer's candidates ranked by attribution, the top 8
# ablated exactly; a candidate whose ablation lowers the target with the 95% interval below zero becomes a node (at
# most 2 per node), and its own inputs are traced in the next earlier layer. `effect` is the relative change of the
# target's summed activation where it fires (−0.5: halved).

# %%
# NBVAL_IGNORE_OUTPUT
start = time.time()
# check the partial forward against the model's own: the residual at the target layer from the first layer's
x_first = C.residuals_at(model, tokens[:4], [layers[0], T_LAYER])
gap = (run_blocks(model, x_first[layers[0]], layers[0], T_LAYER) - x_first[T_LAYER]).abs().max().item()
check_between("partial forward matches the model (max abs diff)", gap, 0, 1e-3)
t_strength = (t_col.reshape(tokens.shape) * keep.numpy()).max(1)
windows = torch.as_tensor(np.argsort(-t_strength, kind="stable")[: sizes.circuit_windows].copy())
edges = C.trace_circuit(model, saes, tokens[windows], (T_LAYER, T_FEATURE), layers,
                        n_candidates=sizes.circuit_candidates, branch=sizes.circuit_branch,
                        keep=keep[windows])
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
print(f"target L{T_LAYER}/{T_FEATURE}: {label_of[(T_LAYER, T_FEATURE)]} ({time.time() - start:.0f}s)")
display(edges.round(3))

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
# blocks in between are rerun); attribution only chose which candidates to ablate.
#
# The target itself, read the same way as the apostrophe feature:

# %%
t_table = C.interval_table(t_col, on["closing parenthesis"], ids, tok, n_bins=sizes.interval_bins)
interval_figure(t_table, t_col, on["closing parenthesis"], f"Layer {T_LAYER}, feature {T_FEATURE}: closing-"
                "parenthesis proxy per activation interval", "05_parenthesis_intervals")

# %%
# Regression values from the committed run; the tables above are not compared digit for digit. On another CPU the
# ablation difference changed in its third decimal (a CI instance printed -0.124 where the committed run had
# -0.125); 0.02 is twenty times that and a fifth of the interval's half-width.
regression("best apostrophe feature: F1", float(apos.f1), 0.862, profile=PROFILE, atol=0.02)
regression("best apostrophe feature: apostrophe precision above half max",
           C.high_interval_precision(a_col, on["apostrophe"]).mean, 0.883, profile=PROFILE, atol=0.02)
regression("ablating it: next-token log-prob change minus the random direction's", summary["minus_control"], -0.125,
           profile=PROFILE, atol=0.02)
# this profile keeps two upstream features per node over two hops (L8, L2): 6 edges is the most the trace returns
regression("closing-parenthesis circuit: significant edges", len(edges), 6, profile=PROFILE)

# %% [markdown]
# ## 5. Verdict
#
# The paper gives these case studies as figures without summary numbers, so each verdict states the rule applied
# to ours: **apostrophe feature** reproduced when the apostrophe precision above half the maximum activation has a
# Wilson lower bound of at least 0.8 (partly: a point estimate of at least 0.5); **output effect** reproduced when
# ablation lowers the next token's log-probability more than the random direction (interval below 0) *and* "s" is
# among the 10 tokens whose probability falls most at standalone apostrophes (partly: one of the two); **circuit**
# reproduced when a chain of significant ablation edges reaches from the target back through every earlier
# dictionary layer (partly: one hop).
# For each claim the table also states its rule, its precondition, a negative and a positive control, and the unit
# its intervals resample; a "none" there marks a test that cannot fail, or cannot decide, as designed.

# %%
# NBVAL_IGNORE_OUTPUT
high = C.high_interval_precision(a_col, on["apostrophe"])
s_in_falls = any(t.strip() == "s" for t, _ in s_falls)
beats_control = summary["minus_control_hi"] < 0
earlier = [la for la in layers if la < T_LAYER]
reached = set(edges.source_layer) if len(edges) else set()
chain = len(earlier) > 0 and reached == set(earlier)
verdicts = [
    Verdict("an apostrophe feature: its high activations are apostrophes",
            "Pythia-70M layer 4; token histograms per interval (no number)",
            f"L{A_LAYER}/{A_FEATURE}: precision above half max {high.mean:.3f} [{high.lo:.3f}, {high.hi:.3f}] "
            f"(n={high.n}); F1 {apos.f1:.3f}, recall {apos.recall:.3f}",
            "reproduced" if high.lo >= 0.8 else "partly" if high.mean >= 0.5 else "not reproduced",
            "features found by rule in every release layer; see the interval table for the low intervals",
            rule="precision of the apostrophe proxy among tokens where the feature exceeds half its maximum "
                 "activation, Wilson 95% interval; reproduced if its lower bound is at least 0.8, partly if the "
                 "estimate is at least 0.5, not reproduced otherwise",
            precondition="none: the feature is selected in-sample, as the best F1 match to the same proxy on the same "
                         "windows where its precision is then measured, so high precision is partly built in; no "
                         "branch returns 'not testable here'",
            negative_control="none: no baseline direction (a random feature, or the proxy's base rate among all "
                             "tokens) is measured the same way",
            positive_control="none: nothing known to pass (an exact apostrophe-token detector) goes through the rule",
            unit="tokens above half the maximum, Wilson interval as if independent; not clustered by window"),
    Verdict("its output effect promotes what follows an apostrophe",
            "logit weights boost 's'",
            f"ablation: next-token log-prob {summary['delta_next_token']:+.3f} vs random direction "
            f"{summary['control_delta']:+.3f} (difference {summary['minus_control']:+.3f} "
            f"[{summary['minus_control_lo']:+.3f}, {summary['minus_control_hi']:+.3f}]); at standalone apostrophes "
            f"{s_summary['delta_next_token']:+.3f} [{s_summary['delta_lo']:+.3f}, {s_summary['delta_hi']:+.3f}], "
            "falls most: " + ", ".join(repr(t) for t, _ in s_falls[:5]),
            "reproduced" if beats_control and s_in_falls else "partly" if beats_control or s_in_falls
            else "not reproduced",
            ("'s' is among" if s_in_falls else "'s' is not among") + " the 10 tokens ablation lowers most at "
            "standalone apostrophes; the direct logit lens (blocks after the layer skipped) boosts "
            + ", ".join(repr(t) for t, _ in lens["boosts"][:3]),
            rule="reproduced when both hold, partly when one does: ablating the feature where it fires lowers the "
                 "next token's log-probability more than removing a same-norm random direction there (95% interval "
                 "of the difference below 0), and 's' is among the 10 tokens ablation lowers most at standalone "
                 "apostrophes",
            precondition="the feature must fire at standalone apostrophes (SmolLM2 fuses \"'s\" into one token) for "
                         "the 's' half to decide; the code does not check this and has no 'not testable here' branch",
            negative_control="a random direction of the same norm removed at the same positions, subtracted in the "
                             "rule; nearly orthogonal to what later layers read, it changes little whatever the data, "
                             "so it is a weak control (its effect is in ours)",
            positive_control="none",
            unit="windows where the feature fires: positions averaged per window, t interval over windows "
                 "(clustered); the 's' half is a top-10 list with no interval"),
    Verdict("a closing-parenthesis circuit across residual layers, found by ablation",
            "closing-parenthesis circuit (figure, no number)",
            "; ".join(f"L{e.source_layer}/{e.source} ({e.source_proxy}) -> L{e.target_layer}/{e.target}: "
                      f"{e.effect:+.0%} [{e.effect_lo:+.0%}, {e.effect_hi:+.0%}]" for e in edges.itertuples())
            or "no significant edge",
            "reproduced" if chain else "partly" if len(edges) else "not reproduced",
            f"traced from L{T_LAYER} through layers {earlier}; upstream nodes by proxy: "
            + ", ".join(f"{k} {v}" for k, v in edges["source_proxy"].value_counts().items()),
            rule="from the middle layer's closing-parenthesis feature, each earlier dictionary layer's top candidates "
                 "by attribution are ablated exactly, an edge kept where the 95% interval of the target's relative "
                 "change lies below 0 (at most 2 per node); reproduced if kept edges reach every earlier dictionary "
                 "layer, partly if any edge is kept, not reproduced if none",
            precondition="none checked: candidates are ranked and tested on the same windows (the target's "
                         "strongest), and the rule does not ask that upstream features be parenthesis-related",
            negative_control="none: no random upstream feature is ablated for comparison, and an earlier feature "
                             "detecting the same token is likely to feed the target through the residual stream, so "
                             "the chain is hard to miss",
            positive_control="machinery only: the partial forward from the first dictionary layer matches the model's "
                             "own (checked; passed, the notebook stops otherwise)",
            unit="the target's strongest windows: per edge, the target's relative change per window, t interval over "
                 "windows (clustered); no correction for the several candidates tried per node"),
]
show_verdicts(verdicts)

# %%
# stable output: the lines under each verdict are its rule, precondition, controls and unit as written in the
# code (thresholds, not measurements)
print_verdicts(verdicts)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook 05 ran in {time.time() - start_all:.0f}s")
