"""Stage 2, the model: hook names (``hooks``), loading a causal LM offline behind TransformerLens hooks (``loader``),
the de-quantized GGUF cache (``cache``), running part of the model and collecting residuals (``forward``), and
measuring the model's own behaviour: held-out loss, next-token logits on prompts (``behaviour``)."""

from saelib.model.hooks import is_resid_post, layer_of, mlp_post, resid_post, stop_layer
from saelib.model.loader import (
    DEFAULT_MODEL,
    ModelInfo,
    ModelNotAvailableError,
    UnknownHookError,
    hook_width,
    load_model,
    model_info,
    model_name,
    model_weights_sha256,
    validate_hooks,
)

__all__ = [
    "DEFAULT_MODEL",
    "ModelInfo",
    "ModelNotAvailableError",
    "UnknownHookError",
    "hook_width",
    "is_resid_post",
    "layer_of",
    "load_model",
    "mlp_post",
    "model_info",
    "model_name",
    "model_weights_sha256",
    "resid_post",
    "stop_layer",
    "validate_hooks",
]
