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
# **Question.** The first version of Cunningham et al. 2023 (arXiv 2309.08600v1: its abstract and its
# concept-erasure experiment) claims that removing dictionary features takes away a capability, gendered pronoun
# prediction, "while disrupting model behaviour less than prior techniques"; its erasure figure plots the
# correct-gender probability against the edit size for LEACE, a class-mean-difference projection and single
# dictionary features, without a headline number. This notebook tests whether projecting out the top SAE feature
# erases more gender information than equally well-chosen control directions, whether one feature erases as much as
# LEACE with no more disruption, and, as a check of the reference method, whether LEACE (Belrose et al. 2023)
# removes the linearly decodable gender signal.
#
# **Method.** The protocol is that of the paper's code. Each eraser is fitted on activations of the few-shot
# classification prompt `" My name is X and I am a male/female."` of *training* names (several prompts per name,
# each with its own shots), at every position of the query sentence from the name onward (the paper's `skip_tokens`
# drops the shots and " My name is"), each labelled with the name's gender. It edits the same positions (the name
# onward) of every evaluated prompt. **Score** = probability of the correct class token with the softmax restricted
# to the two class tokens (" male"/" female", or " he"/" she"), averaged over prompts of *held-out* names; chance is
# 0.5, and lower means more erasure. The paper fits on the classification task only and also evaluates the pronoun
# task, which therefore measures transfer. Section 1 builds the names and prompts, section 2 measures the unedited
# model, section 3 fits the erasers and the controls, sections 4 and 5 measure erasure and disruption per layer and
# method, section 6 compares methods with intervals, section 7 shows the chosen SAE features, and section 9 decides
# the three claims.
#
# The edits compared, each of one residual layer (the first four are those of the paper's code, `erasure.py` in the
# code released with v1; the others are controls the paper does not have):
#
# * **LEACE** (Belrose et al. 2023, the `concept-erasure` package): the smallest affine edit (in the least-squares
#   sense) after which no linear classifier can recover the class from the fitting data better than a constant;
# * **mean difference**: orthogonal projection removing the class-mean-difference direction;
# * **SAE top-k**: orthogonal projection removing the decoder direction(s) of the SAE feature(s) with the largest
#   |cosine| to the class-mean difference, among features active on more than 1% of the fitting positions;
# * **random top-k**: the same projection for k features drawn at random from the same candidates (the negative
#   control every rule should reject);
# * **best random / PCA / ICA top-k**: controls with the SAE's selection advantage: the k directions, out of as many
#   random directions as the SAE has features, or out of the PCA or ICA directions of the layer, whose |cosine| with
#   the class-mean difference is largest (the SAE's own rule);
# * **LEACE + top PC**: LEACE followed by projecting out the top PCA direction of corpus activations, a planted
#   positive control for the dominance rule: it keeps LEACE's guarantee and disrupts more, so LEACE should dominate
#   it.
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
# sign-blind; the paper ranked by signed cosine). The SAEs are the R = 2 tied release dictionaries chosen per layer (notebook 07)
# (the paper used R = 4). Every interval on the tasks is a bootstrap over held-out **names** (`cluster_bootstrap`),
# the unit of independence, and every comparison between methods is decided by its interval (section 6).

# %% tags=["parameters"]
PROFILE: str = "default"  # dev | default | paper (see saelib/core/profiles.py)
DICTIONARIES: str = "release"  # "release" (the chosen shipped dictionary per layer) or "profile" (notebook 01)

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from saelib import dictionaries
from saelib.activations.harvest import heldout_profile
from saelib.baselines.directions import fit_pca, random_directions
from saelib.baselines.shipped import load_shipped_ica
from saelib.core.check import check, check_between, regression
from saelib.core.plots import savefig
from saelib.experiments.notebook_setup import setup
from saelib.core.stats import cluster_bootstrap
from saelib.core.verdicts import print_verdicts, show_verdicts
from saelib.experiments import erasure as E
from saelib.interp.features import FeatureView, feature_activations, feature_views, top_contexts
from saelib.model import layer_of, mlp_post, model_name, resid_post
from saelib.text.names import gendered_names

nb = setup(PROFILE, display_width=140)
profile, model, corpus, tok = nb.profile, nb.model, nb.corpus, nb.tokenizer
sizes = profile.erasure
hooks = [resid_post(layer) for layer in sizes.layers]
PCA_ROWS = 32_768  # held-out corpus rows per layer the PCA control directions are fitted on
# regression values recorded on the default profile (checked in section 6)
REC_PROBE_BEFORE, REC_PROBE_LEACE, REC_CLASS_LEACE, REC_KL_LEACE = 1.0, 0.713333, 0.5523, 0.4124
print(sizes)

# %% [markdown]
# ## 1. Names and prompts
#
# The most frequent census first names that are at least 20 times more common in one sex and a single token after a
# space, balanced between genders, split by name. Every training name gets several classification prompts, each
# with its own draw of few-shot examples, so the erasers are fitted on many more rows than dimensions (LEACE
# estimates a 576 × 576 covariance). Test prompts take their few-shot examples from training names, so no test name
# is ever seen while fitting. **The unit of independence is the name**: the prompts built on one name (its
# templates, its shot draws) are not independent, and every interval on the tasks resamples names.

# %%
train_names, test_names = E.split_single_token_names(tok, gendered_names(tok), sizes.names_per_gender,
                                                     sizes.test_fraction, min_train=sizes.n_shots + 1,
                                                     seed=profile.seed)
fit_prompts = E.class_prompts(tok, train_names, train_names, sizes.n_shots, seed=profile.seed,
                              prompts_per_name=sizes.fit_prompts_per_name)
tasks = {"class": E.class_prompts(tok, test_names, train_names, sizes.n_shots, seed=profile.seed + 100),
         "pronoun": E.pronoun_prompts(tok, test_names, sizes.pronoun_templates, seed=profile.seed + 1)}
n_test_names = len(test_names["male"]) + len(test_names["female"])
print(f"names per gender: {len(train_names['male'])} train, {len(test_names['male'])} test; "
      f"test names: {test_names['male'][:5]} ... {test_names['female'][:5]} ...")
for name, ps in [("fit", fit_prompts), *tasks.items()]:
    print(f"{name}: {len(ps)} prompts on {len(set(ps.names))} names, {int(ps.lengths.max())} tokens, edited positions "
          f"per prompt {int(ps.edit_mask().sum(1).min())}-{int(ps.edit_mask().sum(1).max())}; e.g. {ps.texts[0]!r}")

# %% [markdown]
# ## 2. The model's baseline on held-out names

# %%
# NBVAL_IGNORE_OUTPUT
baseline = {task: E.task_scores(model, ps) for task, ps in tasks.items()}
for task, ps in tasks.items():
    p = baseline[task]["p_correct"]
    print(f"{task}: score {cluster_bootstrap(p, ps.names)}, accuracy (correct token more likely) "
          f"{np.mean(p > 0.5):.2f}")
check_between("baseline class score", float(baseline["class"]["p_correct"].mean()), 0.6, 1.0)
check_between("baseline pronoun score", float(baseline["pronoun"]["p_correct"].mean()), 0.75, 1.0)

# %% [markdown]
# ## 3. Fitting the erasers and the controls
#
# One forward pass over the training prompts, stopping after the deepest layer, collects every layer's activations
# at the fitting positions; all methods at a layer are fitted on the same rows. LEACE uses `concept-erasure`'s
# default covariance estimate, shrunk towards a multiple of the identity (optimal linear shrinkage). The same pass
# over the test classification prompts gives held-out rows for a linear probe (logistic regression), the direct
# check that the edit removes the linearly decodable gender information.
#
# **Controls with the SAE's selection advantage.** The SAE feature is the best-aligned of the SAE's candidate
# features, so a fair control is the best-aligned of a comparable pool picked by the same rule (largest |cosine|
# with the class-mean difference of the fitting rows): as many random unit directions as the SAE has features
# (best-aligned random), the 576 principal directions of held-out corpus activations (best-aligned PCA) and the 576
# shipped ICA directions (best-aligned ICA; `dictionaries/baselines`). A feature only as aligned as chance picks
# would lose to them. A random *SAE feature* among the candidates ("random top-k") is kept as the control that
# should fail every test.

# %%
heldout = heldout_profile(model, [resid_post(layer) for layer in profile.sae.layers]
                          + [mlp_post(profile.sae.mlp_layer)], profile)
fit_acts, fit_labels, fit_index = E.harvest_fit_activations(model, fit_prompts, hooks)
test_acts, test_labels, test_index = E.harvest_fit_activations(model, tasks["class"], hooks)
test_row_names = [tasks["class"].names[i] for i in test_index.tolist()]
saes, erasers, rankings, controls = {}, {}, {}, {}
k1 = sizes.feature_counts[0]  # the controls are fitted at the smallest k, the size the verdicts judge
for hook in hooks:
    if DICTIONARIES == "release":  # the release's chosen tied R = 2 dictionary (the paper used R = 4, not shipped yet)
        saes[hook] = dictionaries.load_release(dictionaries.release_manifest()["chosen"][hook],
                                               model_name=model_name(model), hook=hook)
    elif DICTIONARIES == "profile":
        saes[hook] = dictionaries.load_chosen(PROFILE, hook, model_name=model_name(model))
    else:
        raise ValueError(f"DICTIONARIES must be 'release' or 'profile', got {DICTIONARIES!r}")
    d = fit_acts[hook].shape[1]
    pca = fit_pca(heldout.sample(hook, PCA_ROWS, seed=profile.seed))
    controls[hook] = {"random": random_directions(d, saes[hook].cfg.n_features, seed=profile.seed).directions,
                      "PCA": pca.directions[:d],  # fit_pca keeps both signs; projection is sign-blind
                      "ICA": load_shipped_ica(hook, width=d).directions}
    erasers[hook], rankings[hook] = E.fit_erasers(fit_acts[hook], fit_labels, hook, saes[hook],
                                                  ks=sizes.feature_counts, min_frequency=sizes.min_frequency,
                                                  seed=profile.seed, controls=controls[hook], control_ks=(k1,))
    # planted positive control for dominance: LEACE, then the top PCA direction projected out as well
    erasers[hook]["LEACE + top PC"] = E.ComposedEraser(
        "LEACE + top PC", hook, parts=(erasers[hook]["LEACE"], E.ProjectionEraser("top PC", hook, pca.directions[:1])))
methods = list(erasers[hooks[0]])
print(f"{len(fit_labels)} fitting rows ({fit_labels.float().mean():.0%} female) from {len(set(fit_prompts.names))} "
      f"names, {len(test_labels)} held-out rows from {n_test_names} names per layer; control pools: "
      + ", ".join(f"{k} {len(v)}" for k, v in controls[hooks[0]].items()))
print("methods:", methods)

# %% [markdown]
# The SAE features most aligned with the class-mean difference, per layer (frequency = fraction of fitting
# positions on which the feature fires; mean activation by class), and the |cosine| of the best-aligned control
# directions beside them.

# %%
# NBVAL_IGNORE_OUTPUT
def abs_cosine(hook: str, method: str) -> float:
    diff = E.mean_difference(fit_acts[hook], fit_labels)
    q = erasers[hook][method].directions[0]
    return float(abs(q @ diff) / (q.norm() * diff.norm()))


display(pd.DataFrame({layer_of(h): {m: abs_cosine(h, f"{m} top-{k1}")
                                    for m in ["SAE", "random", *(f"best {c}" for c in controls[h])]}
                      for h in hooks}).T.rename_axis("layer").round(3))
pd.concat({layer_of(h): r.head(3) for h, r in rankings.items()}, names=["layer", "rank"]).round(3)

# %% [markdown]
# ## 4. Erasure and disruption, per layer and method
#
# Every eraser edits the positions it was fitted on (the name onward, scope "query"). LEACE, the mean-difference
# projection and the top SAE feature are also applied at every position but the first (scope "all"), as they are on
# corpus text when disruption is measured, since an edit fitted on a few positions of one prompt format is then
# applied where it was never fitted.

# %%
disruption_tokens = torch.from_numpy(np.array(heldout.tokens[: sizes.disruption_contexts, : sizes.disruption_length]))
clean_logp = E.clean_log_probs(model, disruption_tokens)
# each edit runs only the blocks after its layer, from the clean residual computed once per layer
clean_resid = {task: E.clean_residuals(model, ps.tokens, hooks) for task, ps in tasks.items()}
disruption_resid = E.clean_residuals(model, disruption_tokens, hooks, batch_size=4)
everywhere = ("LEACE", "mean difference", f"SAE top-{k1}")
rows, per_prompt, per_context, probe_rows = [], {}, {}, {}
for hook in hooks:
    for method, eraser in erasers[hook].items():
        row = {"layer": layer_of(hook), "method": method}
        for task, ps in tasks.items():
            for scope in ("query", "all") if method in everywhere else ("query",):
                s = E.task_scores(model, ps, eraser, resid=clean_resid[task][hook], scope=scope)
                per_prompt[(hook, method, task, scope)] = s["p_correct"]
                suffix = "" if scope == "query" else "_all"
                row[f"{task}_score{suffix}"] = float(s["p_correct"].mean())
            if task == "class":
                row["prompt_edit_norm"] = float(s["edit_norm"].mean())
        probe_rows[(hook, method)] = E.probe_correct(eraser.transform(fit_acts[hook]), fit_labels,
                                                     eraser.transform(test_acts[hook]), test_labels)
        row["probe_accuracy"] = float(probe_rows[(hook, method)].mean())
        d = E.disruption(model, disruption_tokens, eraser, clean_logp, corpus.separator, resid=disruption_resid[hook])
        per_context[(hook, method)] = d.pop("kl_per_context")
        row.update(d)
        rows.append(row)
results = pd.DataFrame(rows)
probe_before = {h: E.probe_correct(fit_acts[h], fit_labels, test_acts[h], test_labels) for h in hooks}
n_predictions = disruption_tokens.shape[0] * (disruption_tokens.shape[1] - 1)
print(f"disruption measured on {sizes.disruption_contexts} held-out contexts x {sizes.disruption_length} tokens "
      f"({n_predictions} next-token predictions); probe = logistic regression fitted on erased training rows, "
      f"scored on erased held-out rows")

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the checks below carry the tolerances)
columns = ["layer", "method", "class_score", "class_score_all", "pronoun_score", "pronoun_score_all",
           "probe_accuracy", "kl", "kl_lo", "kl_hi", "ce_increase", "edit_norm", "edit_norm_relative",
           "prompt_edit_norm"]
display(pd.DataFrame({"layer": [layer_of(h) for h in hooks],
                      "probe accuracy before erasure": [str(cluster_bootstrap(probe_before[h], test_row_names))
                                                        for h in hooks]}))
results[columns].round(4)

# %%
shown = ["LEACE", "mean difference", *(f"SAE top-{k}" for k in sizes.feature_counts),
         *(f"best {c} top-{k1}" for c in controls[hooks[0]]), f"random top-{k1}"]
colors = {m: f"C{i}" for i, m in enumerate(shown)}
markers = {m: "o" if m in ("LEACE", "mean difference") else ("s" if m.startswith("SAE") else "x") for m in shown}


def score_ci(hook: str, method: str, task: str) -> tuple[float, float]:
    est = cluster_bootstrap(per_prompt[(hook, method, task, "query")], tasks[task].names, seed=profile.seed)
    return est.mean - est.lo, est.hi - est.mean


fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for ax, task in zip(axes[:2], tasks):
    for method in shown:
        r = results[results.method == method]
        yerr = np.array([score_ci(resid_post(la), method, task) for la in r.layer]).T
        ax.errorbar(r.layer, r[f"{task}_score"], yerr=yerr, marker=markers[method], color=colors[method],
                    label=method, capsize=3)
    ax.axhline(baseline[task]["p_correct"].mean(), color="k", ls="--", lw=1, label="no edit")
    ax.axhline(0.5, color="gray", ls=":", lw=1, label="chance")
    ax.set(title=f"{task} task (held-out names)", xlabel="layer", ylabel="score (p of correct class token)",
           ylim=(0.35, 1.02))
for method in shown:
    r = results[results.method == method]
    axes[2].plot(r.layer, r.probe_accuracy, marker=markers[method], color=colors[method], label=method)
axes[2].plot([layer_of(h) for h in hooks], [probe_before[h].mean() for h in hooks], "k--", label="no edit")
axes[2].axhline(0.5, color="gray", ls=":", lw=1)
axes[2].set(title="linear probe on held-out rows", xlabel="layer", ylabel="accuracy", ylim=(0.35, 1.02))
axes[0].legend(fontsize=7)
fig.suptitle("Score after erasure (95% cluster-bootstrap CI over held-out names); lower is more erasure")
fig.tight_layout()
savefig(fig, "04_erasure_by_layer", PROFILE)
plt.show()

# %% [markdown]
# ## 5. The Pareto picture: erasure achieved against disruption caused
#
# Each point is one (layer, method); x = KL divergence from the unedited model on held-out corpus text, y = the score
# left on held-out names. Better is lower-left. Section 6 decides dominance with intervals; this plot shows the
# point estimates.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
for ax, task in zip(axes, tasks):
    for method in shown:
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
axes[0].legend(fontsize=7)
fig.suptitle("Erasure against disruption (labels = layer)")
fig.tight_layout()
savefig(fig, "04_erasure_pareto", PROFILE)
plt.show()

# %% [markdown]
# ## 6. Comparisons with intervals
#
# Erasure = baseline score − score after the edit, per held-out prompt. A difference of erasures between two methods
# is paired per prompt and its 95% interval comes from a bootstrap over held-out **names** (`E.erasure_difference`);
# a difference of KL is paired per corpus context (t interval over contexts, `E.kl_difference`). One method
# *dominates* another at a layer when it is better on one axis (the interval excludes 0 in its favour) and worse on
# none (`E.dominance`); "undecided" when neither axis separates them.

# %%
# the measurements as one record; its methods are the comparisons of this section and of the verdict (§9)
measured = E.ErasureResults(
    hooks=hooks, controls=controls, k1=k1, baseline=baseline, per_prompt=per_prompt,
    prompt_names={task: ps.names for task, ps in tasks.items()}, per_context=per_context, probe_before=probe_before,
    probe_rows=probe_rows, probe_row_names=test_row_names, top_cos2={}, seed=profile.seed)
erasure, erasure_diff, versus = measured.erasure, measured.erasure_diff, measured.versus
beats_controls, probe_estimate = measured.beats_controls, measured.probe_estimate

rows_v = []
for hook in hooks:
    for task in tasks:
        for k in sizes.feature_counts:
            sae_m = f"SAE top-{k}"
            rows_v.append({
                "layer": layer_of(hook), "k": k, "task": task,
                "erasure LEACE": str(erasure(hook, "LEACE", task)),
                "erasure mean diff": str(erasure(hook, "mean difference", task)),
                "erasure SAE": str(erasure(hook, sae_m, task)),
                **{f"SAE − best {c}": str(erasure_diff(hook, sae_m, f"best {c} top-{k}", task)) if k == k1 else ""
                   for c in controls[hook]},
                "SAE beats every control": beats_controls(hook, sae_m, task) if k == k1 else None,
                "random SAE feature beats every control": beats_controls(hook, f"random top-{k}", task)
                if k == k1 else None,
                "SAE vs LEACE": versus(hook, sae_m, "LEACE", task),
            })
by_layer = pd.DataFrame(rows_v)

# %%
# NBVAL_IGNORE_OUTPUT
with pd.option_context("display.max_colwidth", 60):
    display(by_layer)
scope_rows = [{"layer": layer_of(h), "method": m,
               **{f"{task} erasure ({scope})": str(erasure(h, m, task, scope))
                  for task in tasks for scope in ("query", "all")}}
              for h in hooks for m in everywhere]
pd.DataFrame(scope_rows)

# %% [markdown]
# The checks. Directional, where the mathematics sets the direction: LEACE makes the class means of its fitting
# rows equal, so no linear probe can do better than a constant there; on held-out rows (names it never saw) the
# probe must fall at every layer, though not necessarily to chance. Regression values carry the tolerance of two
# held-out probe rows and 2% on scores and KL.

# %%
leace = results[results.method == "LEACE"].set_index("layer")
row_tol = 2 / len(test_labels)
check("layers where the probe falls under LEACE",
      sum(leace.probe_accuracy[layer_of(h)] < probe_before[h].mean() for h in hooks), len(hooks))
regression("probe accuracy before erasure (best layer)", max(float(v.mean()) for v in probe_before.values()),
           REC_PROBE_BEFORE, profile=PROFILE, atol=row_tol)
regression("probe accuracy after LEACE (max over layers)", float(leace.probe_accuracy.max()), REC_PROBE_LEACE,
           profile=PROFILE, atol=row_tol)
regression("class score after LEACE (best layer)", float(leace.class_score.min()), REC_CLASS_LEACE, profile=PROFILE,
           rtol=0.02)
# directional: erasing the linear gender signal should lower the class score (the bound is fixed in the code, so
# the printed line is the same on every machine)
check_between("class score after LEACE minus the baseline (best layer)",
              float(leace.class_score.min() - baseline["class"]["p_correct"].mean()), -1.0, 0.0)
regression("KL of LEACE on corpus text (max over layers)", float(leace.kl.max()), REC_KL_LEACE, profile=PROFILE,
           rtol=0.02)

# %% [markdown]
# ## 7. The chosen SAE features
#
# For each layer, the feature projected out by "SAE top-1": its top activating contexts on held-out corpus text and
# its **logit effect**, the decoder direction read through the final RMSNorm gain and the unembedding
# ($W_U^\top (g \odot d)$). That is the direct path only: it ignores the layers after the hook and the norm's scale,
# so it is informative for late layers and a rough guide at early ones.

# %%
# NBVAL_IGNORE_OUTPUT
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
    views.append(FeatureView(f"layer {layer_of(hook)}, feature {f}", top_contexts(heldout, acts, tok, k=5), note))
feature_views(views)

# %% [markdown]
# ## 8. Reading the result
#
# LEACE and the mean-difference projection are built to remove the linearly decodable gender signal, and the probe
# in section 4 says whether they did so on held-out names. An SAE edit removes only the direction(s) of the chosen
# feature(s), chosen by |cosine| with the mean difference; how much it can erase is bounded by how well those
# directions span the mean difference (the cosines in section 3), and a small edit that erases little is "less
# disruptive" without being a better eraser. The best-aligned controls ask whether the SAE's feature is more useful
# than the best of an equally large pool of directions that know nothing about the data (random), or only about its
# variance (PCA) or its independence structure (ICA). On the classification task even a perfect linear eraser at
# the query positions need not bring the score to 0.5: the few-shot examples are not edited, and whatever the model
# reads from the query name through attention at later layers is out of reach of an edit at one layer.

# %% [markdown]
# ## 9. Verdict
#
# Three claims of the arXiv v1 erasure experiment (Pythia, tied R = 4 dictionaries; its figure on erasure plots the
# correct-gender probability against the edit size, without a single headline number), each tested per layer on the
# held-out names of the pronoun task, with intervals clustered by name. The rules were fixed before the numbers:
# each claim runs the same rule on a negative control that should fail it and a positive control that should pass
# it, and a layer where the precondition fails is "not testable" there. Beside them, the **cos² bound**: projecting
# out one direction u removes only cos²(u, d) of the squared class-mean difference d, which bounds how much of the
# *linear* separation along d one feature can remove (not the score: the model's read-out is not linear in d). The
# rules are coded in `saelib.experiments.erasure.erasure_verdicts`.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table and figure; the verdict lines below are checked)
bound = []
for hook in hooks:
    cos = float(rankings[hook].iloc[0].cosine)
    sae_e, md_e = erasure(hook, f"SAE top-{k1}"), erasure(hook, "mean difference")
    bound.append({"layer": layer_of(hook), "cosine of the top feature": cos, "cos²": cos ** 2,
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

verdicts = E.erasure_verdicts(replace(measured, top_cos2=bound["cos²"].to_dict()))
with pd.option_context("display.max_colwidth", 120):
    display(bound.round(3))
show_verdicts(verdicts)

# %%
# stable output: the lines under each verdict are its rule, precondition, controls and unit as written in the
# code (thresholds, not measurements)
print_verdicts(verdicts)
