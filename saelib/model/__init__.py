"""Stage 2, the model: loading a causal LM offline behind TransformerLens hooks (``loader``), the de-quantized GGUF
cache (``cache``), and measuring the model's own behaviour: held-out loss, next-token logits on prompts
(``behaviour``)."""

from saelib.model.loader import (
    DEFAULT_MODEL,
    ModelInfo,
    ModelNotAvailableError,
    UnknownHookError,
    hook_layer,
    hook_width,
    load_model,
    model_info,
    model_name,
    model_weights_sha256,
    stop_layer,
    validate_hooks,
)

__all__ = ["DEFAULT_MODEL", "ModelInfo", "ModelNotAvailableError", "UnknownHookError", "hook_layer", "hook_width",
           "load_model", "model_info", "model_name", "model_weights_sha256", "stop_layer", "validate_hooks"]
