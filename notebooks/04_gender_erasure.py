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
# # 04 · Gender concept erasure: ablating SAE features vs LEACE
#
# The first version of Cunningham et al. (arXiv 2309.08600v1) claimed that removing dictionary features takes away a
# capability, gendered pronoun prediction, "while disrupting model behaviour less than prior techniques". Its code
# (`erasure.py`, deleted from the repository later; paper.md §1.11) compared four linear edits of one residual layer:
#
# * **LEACE** (Belrose et al. 2023, the `concept-erasure` package): the smallest affine edit (in the least-squares
#   sense) after which no linear classifier can recover the class from the fitting data better than a constant;
# * **mean difference**: orthogonal projection removing the class-mean-difference direction;
# * **SAE top-k**: orthogonal projection removing the decoder direction(s) of the SAE feature(s) with the largest
#   |cosine| to the class-mean difference, among features active on more than 1% of the fitting positions;
# * **random top-k**: the same projection for k features drawn at random from the same candidates (a control).
#
# **Protocol (as in the paper's code).** Each eraser is fitted on activations of the few-shot classification prompt
# `" My name is X and I am a male/female."` of *training* names, at every position of the query sentence from the
# name onward (the paper's `skip_tokens` drops the shots and " My name is"), each labelled with the name's gender. It
# edits the same positions (the name onward) of every evaluated prompt. **Score** = probability of the correct class
# token with the softmax restricted to the two class tokens (" male"/" female", or " he"/" she"), averaged over
# prompts of *held-out* names; chance is 0.5, and lower means more erasure. The paper fitted on the classification
# task only and also evaluated the pronoun task, which therefore measures transfer.
#
# **Disruption**, which the paper measured only on the task prompts, is measured here on held-out corpus text: the
# same edit at every position except position 0 and the document separator (left out as in notebooks 01–02), and
# the increase of next-token cross-entropy and the KL divergence from the unedited model, averaged over all
# next-token predictions, plus the edit's L2 norm (absolute and relative to the activation's norm).
#
# **Departures from the paper, stated where they matter.** Names come from the 1990 US census (the UCI list the paper
# used is not shipped offline) and are split by name into train and test (the paper fitted and scored the same
# names). The default profile uses 2 shots per class (the paper 3) and one pronoun template, to fit the CPU budget;
# the pronoun prompt starts "Yesterday X went to the store, and" because sentence-initial names without a BOS token
# degrade SmolLM2's pronoun accuracy (`saelib/text/tasks.py`). Features are ranked by |cosine| (projection is
# sign-blind; the paper ranked by signed cosine). The SAEs are the R = 2 tied dictionaries chosen in notebook 01
# (the paper used R = 4).

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
from saelib.activations.harvest import corpus_for_model, heldout_profile
from saelib.core.check import check, check_between, regression
from saelib.core.plots import savefig
from saelib.core.profiles import get_profile
from saelib.core.stats import mean_se
from saelib.core.verdicts import Verdict, by_count, print_verdicts, show_verdicts
from saelib.experiments import erasure as E
from saelib.interp.features import FeatureView, feature_activations, feature_views, top_contexts
from saelib.model import layer_of, load_model, mlp_post, model_name, resid_post
from saelib.text.names import gendered_names

start_all = time.time()
profile = get_profile(PROFILE)
sizes = profile.erasure
torch.manual_seed(profile.seed)
pd.set_option("display.width", 140)
model = load_model(device=profile.device)
tok = model.tokenizer
corpus = corpus_for_model(model)
hooks = [resid_post(layer) for layer in sizes.layers]
print(sizes)

# %% [markdown]
# ## 1. Names and prompts
#
# The most frequent census first names that are at least 20 times more common in one sex and a single token after a
# space, balanced between genders, split by name. Test prompts take their few-shot examples from training names, so
# no test name is ever seen while fitting.

# %%
train_names, test_names = E.split_single_token_names(tok, gendered_names(tok), sizes.names_per_gender,
                                                     sizes.test_fraction, min_train=sizes.n_shots + 1,
                                                     seed=profile.seed)
fit_prompts = E.class_prompts(tok, train_names, train_names, sizes.n_shots, seed=profile.seed)
tasks = {"class": E.class_prompts(tok, test_names, train_names, sizes.n_shots, seed=profile.seed + 1),
         "pronoun": E.pronoun_prompts(tok, test_names, sizes.pronoun_templates, seed=profile.seed + 1)}
print(f"names per gender: {len(train_names['male'])} train, {len(test_names['male'])} test; "
      f"test names: {test_names['male'][:5]} ... {test_names['female'][:5]} ...")
for name, ps in [("fit", fit_prompts), *tasks.items()]:
    print(f"{name}: {len(ps)} prompts, {int(ps.lengths.max())} tokens, edited positions per prompt "
          f"{int(ps.edit_mask().sum(1).min())}-{int(ps.edit_mask().sum(1).max())}; e.g. {ps.texts[0]!r}")

# %% [markdown]
# ## 2. The model's baseline on held-out names

# %%
# NBVAL_IGNORE_OUTPUT
start = time.time()
baseline = {task: E.task_scores(model, ps) for task, ps in tasks.items()}
for task, ps in tasks.items():
    p = baseline[task]["p_correct"]
    print(f"{task}: score {mean_se(p)}, accuracy (correct token more likely) {np.mean(p > 0.5):.2f}")
check_between("baseline class score", float(baseline["class"]["p_correct"].mean()), 0.6, 1.0)
check_between("baseline pronoun score", float(baseline["pronoun"]["p_correct"].mean()), 0.75, 1.0)
baseline_seconds = time.time() - start

# %% [markdown]
# ## 3. Fitting the erasers
#
# One forward pass over the training prompts, stopping after the deepest layer, collects every layer's activations
# at the fitting positions; all methods at a layer are fitted on the same rows. The same pass over the test
# classification prompts gives held-out rows for a linear probe (logistic regression), the direct check that the
# edit removes the linearly decodable gender information.

# %%
start = time.time()
fit_acts, fit_labels, _ = E.harvest_fit_activations(model, fit_prompts, hooks)
test_acts, test_labels, _ = E.harvest_fit_activations(model, tasks["class"], hooks)
saes, erasers, rankings = {}, {}, {}
for hook in hooks:
    if DICTIONARIES == "release":  # the release's chosen tied R = 2 dictionary (the paper used R = 4, not shipped yet)
        saes[hook] = dictionaries.load_release(dictionaries.release_manifest()["chosen"][hook],
                                               model_name=model_name(model), hook=hook)
    elif DICTIONARIES == "profile":
        saes[hook] = dictionaries.load_chosen(PROFILE, hook, model_name=model_name(model))
    else:
        raise ValueError(f"DICTIONARIES must be 'release' or 'profile', got {DICTIONARIES!r}")
    erasers[hook], rankings[hook] = E.fit_erasers(fit_acts[hook], fit_labels, hook, saes[hook],
                                                  ks=sizes.feature_counts, min_frequency=sizes.min_frequency,
                                                  seed=profile.seed)
methods = list(erasers[hooks[0]])
fit_seconds = time.time() - start
print(f"{len(fit_labels)} fitting rows ({fit_labels.float().mean():.0%} female), {len(test_labels)} held-out rows "
      f"per layer; methods: {methods}")

# %% [markdown]
# The SAE features most aligned with the class-mean difference, per layer (frequency = fraction of fitting
# positions on which the feature fires; mean activation by class).

# %%
# NBVAL_IGNORE_OUTPUT
pd.concat({layer_of(h): r.head(3) for h, r in rankings.items()}, names=["layer", "rank"]).round(3)

# %% [markdown]
# ## 4. Erasure and disruption, per layer and method

# %%
start = time.time()
disruption_tokens = torch.from_numpy(np.array(
    heldout_profile(model, [resid_post(layer) for layer in profile.sae.layers]
                    + [mlp_post(profile.sae.mlp_layer)], profile).tokens[
        : sizes.disruption_contexts, : sizes.disruption_length]))
clean_logp = E.clean_log_probs(model, disruption_tokens)
# each edit runs only the blocks after its layer, from the clean residual computed once per layer
clean_resid = {task: E.clean_residuals(model, ps.tokens, hooks) for task, ps in tasks.items()}
disruption_resid = E.clean_residuals(model, disruption_tokens, hooks, batch_size=4)
rows, per_prompt = [], {}
for hook in hooks:
    for method, eraser in erasers[hook].items():
        row = {"layer": layer_of(hook), "method": method}
        for task, ps in tasks.items():
            s = E.task_scores(model, ps, eraser, resid=clean_resid[task][hook])
            per_prompt[(hook, method, task)] = s["p_correct"]
            row[f"{task}_score"] = float(s["p_correct"].mean())
            row[f"{task}_score_se"] = mean_se(s["p_correct"]).se
        row["prompt_edit_norm"] = float(s["edit_norm"].mean())
        erased_train, erased_test = eraser.transform(fit_acts[hook]), eraser.transform(test_acts[hook])
        row["probe_accuracy"] = E.probe_accuracy(erased_train, fit_labels, erased_test, test_labels)
        row.update(E.disruption(model, disruption_tokens, eraser, clean_logp, corpus.separator,
                                resid=disruption_resid[hook]))
        rows.append(row)
results = pd.DataFrame(rows)
probe_before = {h: E.probe_accuracy(fit_acts[h], fit_labels, test_acts[h], test_labels) for h in hooks}
eval_seconds = time.time() - start
n_predictions = disruption_tokens.shape[0] * (disruption_tokens.shape[1] - 1)
print(f"disruption measured on {sizes.disruption_contexts} held-out contexts x {sizes.disruption_length} tokens "
      f"({n_predictions} next-token predictions); probe = logistic regression fitted on erased training rows, "
      f"scored on erased held-out rows")

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the checks below carry the tolerances)
columns = ["layer", "method", "class_score", "pronoun_score", "probe_accuracy", "kl", "kl_lo", "kl_hi",
           "ce_increase", "ce_increase_lo", "ce_increase_hi", "edit_norm", "edit_norm_relative", "prompt_edit_norm"]
display(pd.DataFrame({"layer": [layer_of(h) for h in hooks],
                      "probe accuracy before erasure": [probe_before[h] for h in hooks]}).round(3))
results[columns].round(4)

# %%
colors = {"LEACE": "C0", "mean difference": "C1"}
for i, k in enumerate(sizes.feature_counts):
    colors[f"SAE top-{k}"], colors[f"random top-{k}"] = f"C{2 + 2 * i}", f"C{3 + 2 * i}"
markers = {m: "o" if m in ("LEACE", "mean difference") else ("s" if m.startswith("SAE") else "x") for m in methods}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for ax, task in zip(axes[:2], tasks):
    for method in methods:
        r = results[results.method == method]
        ax.errorbar(r.layer, r[f"{task}_score"], yerr=1.96 * r[f"{task}_score_se"], marker=markers[method],
                    color=colors[method], label=method, capsize=3)
    ax.axhline(baseline[task]["p_correct"].mean(), color="k", ls="--", lw=1, label="no edit")
    ax.axhline(0.5, color="gray", ls=":", lw=1, label="chance")
    ax.set(title=f"{task} task (held-out names)", xlabel="layer", ylabel="score (p of correct class token)",
           ylim=(0.35, 1.02))
for method in methods:
    r = results[results.method == method]
    axes[2].plot(r.layer, r.probe_accuracy, marker=markers[method], color=colors[method], label=method)
axes[2].plot([layer_of(h) for h in hooks], [probe_before[h] for h in hooks], "k--", label="no edit")
axes[2].axhline(0.5, color="gray", ls=":", lw=1)
axes[2].set(title="linear probe on held-out rows", xlabel="layer", ylabel="accuracy", ylim=(0.35, 1.02))
axes[0].legend(fontsize=8)
fig.suptitle("Score after erasure (95% CI across prompts); lower is more erasure")
fig.tight_layout()
savefig(fig, "04_erasure_by_layer", PROFILE)
plt.show()

# %% [markdown]
# ## 5. The Pareto picture: erasure achieved against disruption caused
#
# Each point is one (layer, method); x = KL divergence from the unedited model on held-out corpus text, y = the score
# left on held-out names. Better is lower-left. A method dominates another at a layer if it erases at least as much
# with at most as much disruption.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
for ax, task in zip(axes, tasks):
    for method in methods:
        r = results[results.method == method]
        ax.scatter(r.kl, r[f"{task}_score"], marker=markers[method], color=colors[method], label=method, s=40)
        for _, row in r.iterrows():
            ax.annotate(str(row.layer), (row.kl, row[f"{task}_score"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.axhline(baseline[task]["p_correct"].mean(), color="k", ls="--", lw=1, label="no edit")
    ax.axhline(0.5, color="gray", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set(title=f"{task} task", xlabel="KL(clean ‖ edited) on corpus text, nats/token (log)",
           ylabel="score after erasure")
axes[0].legend(fontsize=8)
fig.suptitle("Erasure against disruption (labels = layer)")
fig.tight_layout()
savefig(fig, "04_erasure_pareto", PROFILE)
plt.show()

# %% [markdown]
# ## 6. Verdicts
#
# Erasure achieved = baseline score − score after the edit (per prompt, paired, with its 95% t interval). "Beats the
# random control" means the 95% interval of (random − SAE) score lies above zero.

# %%
def erasure_of(hook: str, method: str, task: str):
    return mean_se(baseline[task]["p_correct"] - per_prompt[(hook, method, task)])


def compare(hook: str, a: str, b: str, task: str) -> str:
    """Which of methods a, b wins at this layer for this task (dominance on erasure vs KL)."""
    ea, eb = erasure_of(hook, a, task).mean, erasure_of(hook, b, task).mean
    ka, kb = (float(results[(results.layer == layer_of(hook)) & (results.method == m)].kl.iloc[0])
              for m in (a, b))
    if ea >= eb and ka <= kb:
        return f"{a} dominates"
    if eb >= ea and kb <= ka:
        return f"{b} dominates"
    return f"trade-off ({a if ea > eb else b} erases more, {a if ka < kb else b} disrupts less)"


rows_v = []
for hook in hooks:
    layer = layer_of(hook)
    for k in sizes.feature_counts:
        sae_m, rnd_m = f"SAE top-{k}", f"random top-{k}"
        for task in tasks:
            diff = mean_se(per_prompt[(hook, rnd_m, task)] - per_prompt[(hook, sae_m, task)])
            rows_v.append({
                "layer": layer, "k": k, "task": task,
                "erasure LEACE": str(erasure_of(hook, "LEACE", task)),
                "erasure mean diff": str(erasure_of(hook, "mean difference", task)),
                "erasure SAE": str(erasure_of(hook, sae_m, task)),
                "erasure random": str(erasure_of(hook, rnd_m, task)),
                "SAE beats random control": bool(diff.lo > 0),
                "SAE vs LEACE": compare(hook, sae_m, "LEACE", task),
            })
by_layer = pd.DataFrame(rows_v)

# %%
# NBVAL_IGNORE_OUTPUT
by_layer

# %%
# NBVAL_IGNORE_OUTPUT
# (the verdict text is computed from the measured numbers above)
def layers_where(mask) -> str:
    sel = sorted(set(by_layer[mask].layer))
    return ", ".join(map(str, sel)) if sel else "none"


for task in tasks:
    best = results.loc[results[f"{task}_score"].idxmin()]
    print(f"[{task}] strongest erasure: {best.method} at layer {best.layer} (score {best[f'{task}_score']:.3f}, "
          f"baseline {baseline[task]['p_correct'].mean():.3f}, KL {best.kl:.3g}).")
    for k in sizes.feature_counts:
        sel = (by_layer.task == task) & (by_layer.k == k)
        print(f"  SAE top-{k} dominates LEACE (erases at least as much, disrupts at most as much) at layers: "
              f"{layers_where(sel & by_layer['SAE vs LEACE'].str.startswith('SAE'))}; LEACE dominates it at "
              f"layers: {layers_where(sel & by_layer['SAE vs LEACE'].str.startswith('LEACE'))}; a trade-off at "
              f"layers: {layers_where(sel & by_layer['SAE vs LEACE'].str.startswith('trade'))}")
        print(f"  SAE top-{k} erases more than the random top-{k} control (> 2 SE) at layers: "
              f"{layers_where(sel & by_layer['SAE beats random control'])}")
leace = results[results.method == "LEACE"].set_index("layer")
sae1 = results[results.method == f"SAE top-{sizes.feature_counts[0]}"].set_index("layer")
print(f"edit size on corpus text, relative to the activation norm: LEACE {leace.edit_norm_relative.mean():.3f}, "
      f"SAE top-{sizes.feature_counts[0]} {sae1.edit_norm_relative.mean():.3f} (mean over layers); KL: LEACE "
      f"{leace.kl.mean():.3g}, SAE {sae1.kl.mean():.3g} nats/token.")

# %% [markdown]
# The same numbers carry the checks. Directional, where the mathematics sets the direction: LEACE makes the class
# means of its fitting rows equal, so no linear probe can do better than a constant there; on held-out rows (names
# it never saw) the probe must fall at every layer, though not necessarily to chance (0.49-0.63 here: the erasure
# generalises only as far as the new names' activations resemble the fitted ones). Regression values: two fresh
# clones gave identical numbers; the probes' tolerance is two of the 150 held-out rows (lbfgs and Newton-Cholesky
# disagreed by up to two), the scores' and KL's 2%. (The probe before erasure is weakest at the earliest layer, where
# the gender of an unseen name is least linearly readable.)

# %%
random_change = [row.probe_accuracy - probe_before[resid_post(row.layer)]
                 for row in results[results.method.str.startswith("random")].itertuples()]
row_tol = 2 / len(test_labels)
check("layers where the probe falls under LEACE", sum(leace.probe_accuracy[layer_of(h)] < probe_before[h]
                                                      for h in hooks), len(hooks))
regression("probe accuracy before erasure (best layer)", max(probe_before.values()), 0.993333, profile=PROFILE,
           atol=row_tol)
regression("probe accuracy after LEACE (max over layers)", float(leace.probe_accuracy.max()), 0.633333,
           profile=PROFILE, atol=row_tol)
regression("probe accuracy change under the random control (min over layers)", min(random_change), -0.0133333,
           profile=PROFILE, atol=row_tol)
regression("class score after LEACE (best layer)", float(leace.class_score.min()), 0.597396, profile=PROFILE, rtol=0.02)
# directional: erasing the linear gender signal should lower the class score (the bound is fixed in the code, so
# the printed line is the same on every machine)
check_between("class score after LEACE minus the baseline (best layer)",
              float(leace.class_score.min() - baseline["class"]["p_correct"].mean()), -1.0, 0.0)
regression("KL of LEACE on corpus text (max over layers)", float(leace.kl.max()), 0.413235, profile=PROFILE, rtol=0.02)

# %% [markdown]
# ## 7. The chosen SAE features
#
# For each layer, the feature projected out by "SAE top-1": its top activating contexts on held-out corpus text and
# its **logit effect**, the decoder direction read through the final RMSNorm gain and the unembedding
# ($W_U^\top (g \odot d)$). That is the direct path only: it ignores the layers after the hook and the norm's scale,
# so it is informative for late layers and a rough guide at early ones.

# %%
# NBVAL_IGNORE_OUTPUT
heldout = heldout_profile(model, [resid_post(layer) for layer in profile.sae.layers]
                          + [mlp_post(profile.sae.mlp_layer)], profile)
views = []
for hook in hooks:
    eraser = erasers[hook][f"SAE top-{sizes.feature_counts[0]}"]
    f = eraser.features[0]
    info = rankings[hook].set_index("feature").loc[f]
    effects = E.logit_effects(model, saes[hook].dictionary()[0, f], hook)
    acts = feature_activations(heldout, hook, saes[hook], features=[f])[:, 0]
    note = (f"cosine with mean difference (female − male) {info.cosine:+.3f}; fires on {info.frequency:.1%} of "
            f"fitting positions (mean activation male {info.mean_male:.3f}, female {info.mean_female:.3f}) and on "
            f"{(acts > 0).mean():.2%} of held-out corpus tokens. Boosts {effects['boosted']}; suppresses "
            f"{effects['suppressed']}.")
    views.append(FeatureView(f"layer {hook.split('.')[1]}, feature {f}", top_contexts(heldout, acts, tok, k=5), note))
feature_views(views)

# %%
# NBVAL_IGNORE_OUTPUT
total_seconds = time.time() - start_all
pd.Series({"baseline": baseline_seconds, "fit (harvest + erasers)": fit_seconds,
           "evaluate (tasks + probes + disruption)": eval_seconds, "total incl. model load": total_seconds}
          ).round(0).rename("seconds")

# %% [markdown]
# ## 8. Reading the result
#
# The verdict lines in section 6 are computed from the measurements; this is how to read them. LEACE and the
# mean-difference projection are built to remove the linearly decodable gender signal, and the probe in section 4
# says whether they did so on held-out names. An SAE edit removes only the direction(s) of the chosen feature(s),
# chosen by cosine with the mean difference; how much it can erase is bounded by how well those directions span the
# mean difference (the cosines in section 3), and a small edit that erases little is "less disruptive" without
# being a better eraser. The Pareto plot is the fair comparison: at a given KL on corpus text, which method leaves
# the lower score. On the classification task even a perfect linear eraser at the query positions need not bring
# the score to 0.5: the few-shot examples are not edited, and whatever the model reads from the query name through
# attention at later layers is out of reach of an edit at one layer.

# %% [markdown]
# ## 9. Verdict
#
# Three claims of the arXiv v1 erasure experiment (Pythia, tied R = 4 dictionaries; its Fig. on erasure plots the
# correct-gender probability against the edit size, without a single headline number), each tested per layer on
# the held-out names (pronoun task; paired 95% t intervals over prompts), and beside them the **cos² bound**:
# projecting out one direction u removes only cos²(u, d) of the squared class-mean difference d (a feature with
# cosine 0.3 takes 9% of it), so it bounds how much of the *linear* separation along d one feature can remove. It
# does not bound the score: the model's read-out is not linear in d, and u can carry gender information that the
# mean difference misses, so the score can fall by more than cos² of the mean-difference projection's effect (the
# plot shows where).
# For each claim the table also states its rule, its precondition, a negative and a positive control, and the unit
# its intervals resample; a "none" there marks a test that cannot fail, or cannot decide, as designed.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table and figure; the verdict lines below are checked)
k1 = sizes.feature_counts[0]
bound = []
for hook in hooks:
    layer = layer_of(hook)
    cos = float(rankings[hook].iloc[0].cosine)
    sae_e, md_e = erasure_of(hook, f"SAE top-{k1}", "pronoun"), erasure_of(hook, "mean difference", "pronoun")
    bound.append({"layer": layer, "cosine of the top feature": cos, "cos²": cos ** 2,
                  "SAE top-1 erasure": sae_e.mean, "mean-difference erasure": md_e.mean,
                  "SAE / mean difference": sae_e.mean / md_e.mean if md_e.mean > 0 else float("nan")})
bound = pd.DataFrame(bound).set_index("layer")
fig, ax = plt.subplots(figsize=(6.5, 3.5))
x = np.arange(len(bound))
ax.bar(x - 0.2, bound["cos²"], 0.4, label="cos² (top feature, mean difference)")
ax.bar(x + 0.2, bound["SAE / mean difference"].clip(lower=0), 0.4, label="SAE top-1 erasure / mean-difference erasure")
ax.set_xticks(x, [f"layer {la}" for la in bound.index])
ax.set_ylabel("fraction")
ax.legend(frameon=False, fontsize=8)
ax.set_title("What one feature can erase (pronoun task, held-out names)")
savefig(fig, "04_cos2_bound", PROFILE)
plt.show()

sel = (by_layer.task == "pronoun") & (by_layer.k == k1)
n_layers = len(hooks)
beats_random = int(by_layer[sel]["SAE beats random control"].sum())
dominates = int(by_layer[sel]["SAE vs LEACE"].str.startswith("SAE").sum())
leace_chance = int((leace.probe_accuracy <= 0.6).sum())


def per_layer(col):
    return "; ".join(f"L{la}: {v}" for la, v in zip(by_layer[sel].layer, by_layer[sel][col]))


verdicts = [
    Verdict("projecting out the top SAE feature erases more gender information than a random feature",
            "v1: SAE-feature curve below the random-feature control",
            "pronoun score, erasure (baseline − after) SAE top-1: " + per_layer("erasure SAE") + "; random: "
            + per_layer("erasure random"),
            by_count(beats_random, n_layers),
            f"SAE beats the random control (95% interval) at {beats_random} of {n_layers} layers",
            rule="per layer, pronoun score after projecting out a random candidate feature minus after projecting out "
                 "the top SAE feature (by |cosine| with the class-mean difference), paired per held-out prompt; "
                 "supported where its 95% interval lies above 0; reproduced at every layer, partly at some, not "
                 "reproduced at none",
            precondition="the model must do the pronoun task on held-out names (baseline score checked to lie in "
                         "[0.75, 1]; passed, the notebook stops otherwise); nothing else makes it 'not testable here'",
            negative_control="none that can fail: a random feature's direction has expected cos² ≈ 1/576 with the "
                             "gender direction, so it erases almost nothing whatever the data, and beating it shows "
                             "only that the chosen feature is aligned at all",
            positive_control="none for the SAE edit; LEACE lowering the class score below the baseline at its best "
                             "layer is checked (passed, the notebook stops otherwise)",
            unit="prompts: the held-out pronoun prompts, t interval as if independent, though they come from few "
                 "held-out names with several templates each; not clustered by name"),
    Verdict("one SAE feature erases as much as LEACE with no more disruption",
            "v1: single features compared with LEACE on erasure against edit size",
            "layers where SAE top-1 dominates LEACE (erasure at least as large, KL on corpus text at most as "
            f"large): {dominates} of {n_layers}; cos² of the top feature "
            + ", ".join(f"L{la} {v:.2f}" for la, v in bound["cos²"].items()),
            by_count(dominates, n_layers),
            f"a trade-off at {int(by_layer[sel]['SAE vs LEACE'].str.startswith('trade').sum())} layers, LEACE "
            f"dominates at {int(by_layer[sel]['SAE vs LEACE'].str.startswith('LEACE').sum())}; the top feature "
            "covers only cos² of the mean difference (above); dictionaries are R = 2 (the paper: R = 4)",
            rule="per layer, SAE top-1 dominates LEACE when its mean pronoun erasure (baseline − after) is at least "
                 "LEACE's and its KL from the unedited model on corpus text at most LEACE's; reproduced at every "
                 "layer, partly at some, not reproduced at none. Means only: no interval enters the rule",
            precondition="none checked: LEACE's 576 × 576 covariance is estimated from the fitting rows (printed in "
                         "section 3), not many more than the dimensions, and a layer where neither edit erases more "
                         "than noise still returns a winner",
            negative_control="none: no edit expected to lose to LEACE on both axes is compared",
            positive_control="none for the comparison; the probe falling under LEACE at every layer is checked "
                             "(passed, the notebook stops otherwise), which shows LEACE edits the gender signal, not "
                             "that the rule can find an SAE win",
            unit="none: a comparison of means (erasure over held-out pronoun prompts, KL over corpus tokens), with "
                 "no interval"),
    Verdict("LEACE removes the linearly decodable gender signal",
            "LEACE (Belrose et al.): probe at chance after erasure",
            "probe accuracy after LEACE: " + ", ".join(f"L{la} {v:.2f}" for la, v in leace.probe_accuracy.items()),
            by_count(leace_chance, n_layers),
            f"probe ≤ 0.60 on held-out rows at {leace_chance} of {n_layers} layers",
            rule="per layer, accuracy of a logistic probe fitted on LEACE-erased fitting rows and scored on erased "
                 "held-out rows; reproduced if at most 0.60 at every layer, partly at some, not reproduced at none",
            precondition="the probe must read gender before erasure: checked only at the best layer (a regression "
                         "value), not per layer, so a layer whose probe was never far above 0.60 still counts",
            negative_control="the random-feature projection leaves the probe near its unedited accuracy (a checked "
                             "regression value); it cannot fail, since a random direction has expected cos² ≈ 1/576 "
                             "with the gender direction",
            positive_control="the probe falls under LEACE at every layer (checked; passed, the notebook stops "
                             "otherwise); the mean-difference projection, also a linear eraser, is shown beside but "
                             "not required",
            unit="none: a point accuracy per layer against a fixed 0.60, with no interval; its held-out rows are "
                 "several query positions of each held-out name's prompt, so they are not independent"),
]
with pd.option_context("display.max_colwidth", 120):
    display(bound.round(3))
show_verdicts(verdicts)

# %%
# stable output: the lines under each verdict are its rule, precondition, controls and unit as written in the
# code (thresholds, not measurements)
print_verdicts(verdicts)
