"""LLM explainer and simulators with the paper's prompt structure (Bills et al. 2023, used by Cunningham et al.).

Two backends behind one small interface (``ChatBackend.complete(messages) -> str``):
- ``LocalChatBackend``: an instruct model loaded with transformers, by default the bundled SmolLM2-135M-Instruct
  (runs offline; far weaker than the paper's GPT-4 / text-davinci-003, so its scores are not comparable);
- ``OpenAICompatibleBackend``: any ``/v1/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp server, ...).

``LLMExplainer`` shows 0-10 activation records and asks for the completion of "the main thing this neuron does is
find"; ``LLMSimulator`` asks for one ``token<TAB>level`` line per token; ``LogprobSimulator`` (local models) is the
paper's "all at once" simulator: one forward pass over ``token<TAB>unknown`` lines, reading the expected level from
the model's distribution over the digits at each ``unknown``. Unreachable endpoints and unusable answers raise
``BackendError``; ``saelib.interp.autointerp.score_dictionary`` keeps every score computed before the error.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import math
import os
import re
import socket
import threading
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from saelib.interp.explanations import MAX_LEVEL, cache_key, discretize
from saelib.interp.fragments import Record

if TYPE_CHECKING:
    from transformers import BatchEncoding, GenerationMixin

EXPLAINER_SYSTEM = (
    "We're studying neurons in a neural network. Each neuron looks for some particular thing in a short document. "
    "Look at the parts of the document the neuron activates for and summarize in a single sentence what the neuron "
    "is looking for. Don't list examples of words.\n\nThe activation format is token<tab>activation. Activation "
    "values range from 0 to 10. A neuron finding what it's looking for is represented by a non-zero activation "
    "value. The higher the activation value, the stronger the match."
)
SIMULATOR_SYSTEM = (
    "We're studying neurons in a neural network. Each neuron looks for some particular thing in a short document. "
    "Look at an explanation of what the neuron does, and try to predict its activations on each token.\n\nThe "
    'activation format is token<tab>activation, activations go from 0 to 10, "unknown" indicates an unknown '
    "activation. Most activations will be 0."
)
EXPLANATION_PREFIX = "the main thing this neuron does is find"
# part of every LLM method's key: an edited prompt gives new scores, not the old prompt's
PROMPTS_SHA256 = hashlib.sha256(
    "\0".join((EXPLAINER_SYSTEM, SIMULATOR_SYSTEM, EXPLANATION_PREFIX)).encode()
).hexdigest()


class BackendError(RuntimeError):
    """The LLM backend could not be reached or gave an answer that cannot be used."""


def _show_token(token: str) -> str:
    return token.replace("\n", "\\n").replace("\t", "\\t")


def format_records(records: Sequence[Record], levels: Sequence[np.ndarray] | None = None) -> str:
    """Records as the paper's ``<start> token<tab>activation ... <end>`` blocks (levels 0-10, or "unknown")."""
    blocks = []
    for i, rec in enumerate(records):
        values = levels[i] if levels is not None else ["unknown"] * len(rec.tokens)
        lines = [f"{_show_token(t)}\t{v}" for t, v in zip(rec.tokens, values)]
        blocks.append("<start>\n" + "\n".join(lines) + "\n<end>")
    return "\n\n".join(blocks)


class LocalChatBackend:
    """A local instruct model through transformers (greedy decoding). ``name``: a bundled alias, a local folder or a
    cached Hugging Face id (see ``saelib.model.loader.load_model``)."""

    def __init__(self, name: str | None = None, device: str = "cpu", max_prompt_tokens: int = 6000):
        from saelib.model.loader import DEFAULT_MODEL, _load_hf

        self.name = f"local:{name or DEFAULT_MODEL}"
        self._model_name = name or DEFAULT_MODEL
        self.model, self.tokenizer, _ = _load_hf(self._model_name, device)
        self.model.eval().requires_grad_(False)
        self.device, self.max_prompt_tokens = device, max_prompt_tokens
        self._key: dict | None = None

    @property
    def key(self) -> dict:
        """What determines the answers: the model and the sha256 of its weights (a local folder may be retrained
        under the same name)."""
        if self._key is None:
            from saelib.model.loader import _weights_file_sha256, model_weights_sha256

            sha = _weights_file_sha256(self._model_name) or model_weights_sha256(self.model)
            self._key = {"backend": "local", "model": self._model_name, "weights_sha256": sha}
        return self._key

    def prompt_ids(self, messages: list[dict], generation: bool = True) -> torch.Tensor:
        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=generation, return_tensors="pt", return_dict=True
        )
        ids: torch.Tensor = cast("BatchEncoding", encoded)["input_ids"]  # return_dict: a BatchEncoding
        if ids.shape[1] > self.max_prompt_tokens:
            raise BackendError(f"prompt of {ids.shape[1]} tokens exceeds max_prompt_tokens={self.max_prompt_tokens}")
        return ids.to(self.device)

    def complete(self, messages: list[dict], max_tokens: int = 64) -> str:
        ids = self.prompt_ids(messages)
        with torch.no_grad():
            # a causal LM (AutoModelForCausalLM); transformers' generate, wrapped in torch.no_grad(), types its self
            # as a Protocol that mypy does not match to the model
            generated = cast("GenerationMixin", self.model).generate(  # type: ignore[misc]
                ids, max_new_tokens=max_tokens, do_sample=False, pad_token_id=self.tokenizer.eos_token_id
            )
        out = cast(torch.Tensor, generated)  # no return_dict_in_generate: the token ids [1, n]
        return cast(str, self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))  # one sequence


OPENAI_HOST = "api.openai.com"  # the only host that gets the key from the environment
MAX_RESPONSE_BYTES = 1 << 20  # a chat completion is a few kB; more is a misbehaving server
REDACTED = "[API key removed]"


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1: traffic that never leaves this machine."""
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAICompatibleBackend:
    """``POST {base_url}/chat/completions`` with temperature 0.

    The key is ``api_key`` when given. Otherwise the environment variable ``api_key_env`` (default ``OPENAI_API_KEY``)
    is read only when base_url's host is ``api.openai.com``: any other server (vLLM, llama.cpp, a proxy) gets no key
    unless it is passed explicitly, so an OpenAI key never reaches another server by accident. A key is never sent
    over plain http except to loopback (localhost, 127.0.0.0/8, ::1): that is refused here, before any connection.
    Redirects are not followed (a ``BackendError``), each request gets ``timeout`` seconds of wall-clock time in all
    and at most ``max_response_bytes`` of answer, environment proxies are not used, and the key is removed from
    every error message and every reply (a server may echo it)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        parts = urllib.parse.urlsplit(base_url.rstrip("/") + "/chat/completions")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must look like https://host[:port]/v1, got {base_url!r}")
        if parts.username or parts.password:  # they would be shown in every error message
            raise ValueError("base_url must not contain user:password@; pass the key as api_key")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ValueError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")
        self.url, self._parts = parts.geturl(), parts
        self.model, self.timeout, self.max_response_bytes = model, float(timeout), max_response_bytes
        from_env = os.environ.get(api_key_env) if parts.hostname == OPENAI_HOST else None
        self._api_key = api_key if api_key is not None else from_env
        if self._api_key and parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError(
                f"refusing to send an API key over plain http to {parts.hostname} (anyone on the way "
                "can read it): use https://, or a loopback address (localhost, 127.0.0.1, ::1) for a "
                "local server"
            )
        self.name = f"openai-compatible:{model}"
        # what determines the answers: the server and its model (two servers may serve different weights under one
        # model name); scores are saved under this key, never under the name alone
        self.key = {"backend": "openai-compatible", "url": self.url, "model": model}

    def __repr__(self) -> str:
        return f"OpenAICompatibleBackend({self.url!r}, {self.model!r}, key={'set' if self._api_key else 'none'})"

    def redact(self, text: str) -> str:
        return text.replace(self._api_key, REDACTED) if self._api_key else text

    def _excerpt(self, data: bytes | str, limit: int = 200) -> str:
        """Server text fit for an error message: without the key and at most ``limit`` characters."""
        text = self.redact(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data))
        return repr(text[:limit]) + (" ..." if len(text) > limit else "")

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        chunks, size = [], 0
        while chunk := response.read1(64 * 1024):  # read1: returns what arrived, never waits for a full buffer
            size += len(chunk)
            if size > self.max_response_bytes:
                raise BackendError(
                    f"{self.url} sent more than max_response_bytes={self.max_response_bytes} bytes; "
                    "a chat completion is much smaller (raise the limit if the replies are long)"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
        """(status, Location header, body) of one POST, all of it within ``timeout`` seconds."""
        https = self._parts.scheme == "https"
        kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
        port = self._parts.port or (443 if https else 80)  # explicit, or http.client misreads "::1" as host ":"
        host = cast(str, self._parts.hostname)  # __init__ rejects a URL without one
        conn = kind(host, port, timeout=self.timeout)
        expired = threading.Event()
        sockets: list[socket.socket] = []

        def expire() -> None:  # a socket timeout alone is per read: a server dripping bytes would never end
            expired.set()
            for sock in sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        watchdog = threading.Timer(self.timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
                conn.connect()
            except OSError as err:
                if expired.is_set():
                    raise BackendError(f"{self.url} gave no complete answer within timeout={self.timeout} s") from None
                raise BackendError(
                    f"cannot reach {self.url} ({self._excerpt(str(err))}); check base_url and that "
                    "the server is running (this machine may be offline)"
                ) from err
            sockets.append(conn.sock)  # kept: the response may outlive conn.sock (Connection: close)
            try:
                conn.request("POST", self._parts.path, body, headers)
                response = conn.getresponse()
                answer = response.status, response.getheader("Location"), self._read(response)
            except (OSError, http.client.HTTPException) as err:
                if expired.is_set():
                    raise BackendError(f"{self.url} gave no complete answer within timeout={self.timeout} s") from None
                raise self._broken_answer(err) from err
        finally:
            watchdog.cancel()
            conn.close()
        if expired.is_set():
            raise BackendError(f"{self.url} gave no complete answer within timeout={self.timeout} s")
        return answer

    def _broken_answer(self, err: Exception) -> BackendError:
        """The error for a server that accepted the connection but gave no usable HTTP answer."""
        if isinstance(err, http.client.IncompleteRead):
            return BackendError(
                f"{self.url} closed the connection before the end of its answer "
                f"({self._excerpt(str(err), 80)}); check the server's log"
            )
        if isinstance(err, http.client.HTTPException) and not isinstance(err, OSError):
            return BackendError(
                f"{self.url} answered something that is not an HTTP response "
                f"({type(err).__name__}: {self._excerpt(str(err), 80)}); check that base_url points "
                "to an OpenAI-compatible server and not to another service"
            )
        return BackendError(
            f"{self.url} accepted the connection but closed it without a complete answer "
            f"({type(err).__name__}: {self._excerpt(str(err), 80)}); check the server's log"
        )

    def complete(self, messages: list[dict], max_tokens: int = 64) -> str:
        body = json.dumps(
            {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        status, location, raw = self._post(body, headers)
        if 300 <= status < 400:  # following it would send the key wherever the server points
            raise BackendError(
                f"{self.url} answered HTTP {status}, a redirect to {self._excerpt(location or '')}, "
                "which is not followed: set base_url to the final address"
            )
        if status != 200:
            raise BackendError(f"{self.url} answered HTTP {status}: {self._excerpt(raw)}")
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):  # RecursionError: absurdly deep JSON
            raise BackendError(
                f"{self.url} answered something that is not a chat completion: {self._excerpt(raw)}"
            ) from None
        if not isinstance(content, str):
            raise BackendError(f"{self.url} answered a non-text message content: {self._excerpt(repr(content))}")
        return self.redact(content)


class LLMExplainer:
    """Explanation = the model's completion of "the main thing this neuron does is find" after the records."""

    def __init__(self, backend, max_tokens: int = 48):
        self.backend, self.max_tokens = backend, max_tokens
        self.name = f"LLM explainer ({backend.name})"

    @property
    def key(self) -> dict:
        return {
            "explainer": "llm",
            "backend": cache_key(self.backend),
            "max_tokens": self.max_tokens,
            "prompts": PROMPTS_SHA256[:16],
        }

    def explain(self, records: Sequence[Record]) -> str:
        user = (
            f"Neuron 1\nActivations:\n{format_records(records, discretize(records))}\n\n"
            f"Explanation of neuron 1 behavior: {EXPLANATION_PREFIX}"
        )
        reply = self.backend.complete(
            [{"role": "system", "content": EXPLAINER_SYSTEM}, {"role": "user", "content": user}], self.max_tokens
        )
        text = reply.strip().split("\n")[0].strip()
        if text.lower().startswith(EXPLANATION_PREFIX):
            text = text[len(EXPLANATION_PREFIX) :].strip()
        if not re.search(r"\w", text):
            raise BackendError(f"{self.backend.name} gave no usable explanation: {reply[:200]!r}")
        return text


def _simulation_prompt(explanation: str, tokens: Sequence[str]) -> str:
    return (
        f"Neuron 1\nExplanation of neuron 1 behavior: {EXPLANATION_PREFIX} {explanation}\nActivations:\n"
        + format_records([Record(list(tokens), np.zeros(len(tokens)))])
    )


_LINE = re.compile(r"^(.*)\t\s*(\d+(?:\.\d+)?)\s*$")


class LLMSimulator:
    """Asks for ``token<TAB>level`` for every token of a record and parses the reply (any chat backend)."""

    def __init__(self, backend, tokens_per_line: int = 8):
        self.backend, self.tokens_per_line = backend, tokens_per_line
        self.name = f"LLM simulator ({backend.name})"

    @property
    def key(self) -> dict:
        return {
            "simulator": "llm",
            "backend": cache_key(self.backend),
            "tokens_per_line": self.tokens_per_line,
            "prompts": PROMPTS_SHA256[:16],
        }

    def _one(self, explanation: str, tokens: Sequence[str]) -> np.ndarray:
        user = (
            _simulation_prompt(explanation, tokens) + '\n\nReplace every "unknown" with your predicted '
            "activation (0-10). Reply with exactly one line per token, token<tab>activation, in the same order, "
            "and nothing else."
        )
        reply = self.backend.complete(
            [{"role": "system", "content": SIMULATOR_SYSTEM}, {"role": "user", "content": user}],
            self.tokens_per_line * len(tokens) + 16,
        )
        values = [float(m.group(2)) for line in reply.splitlines() if (m := _LINE.match(line))]
        if len(values) != len(tokens):
            raise BackendError(
                f"{self.backend.name} returned {len(values)} activations for {len(tokens)} tokens; "
                f"reply starts {reply[:200]!r}"
            )
        return np.clip(np.array(values), 0, MAX_LEVEL)

    def simulate(self, explanation: str, records: Sequence[list[str]]) -> list[np.ndarray]:
        return [self._one(explanation, tokens) for tokens in records]


class LogprobSimulator:
    """The paper's "all at once" simulator on a local model: one forward pass per record over ``token<TAB>unknown``
    lines; each token's prediction is the expected digit (0-9) under the model's next-token distribution right after
    its tab ("10" shares its first token with "1" and is folded into it). The record's lines are tokenized piece by
    piece so every slot's position is known exactly, whatever the record's tokens are."""

    PLACEHOLDER = "\u0000RECORD\u0000"

    def __init__(self, backend: LocalChatBackend):
        self.backend = backend
        self.name = f"logprob simulator ({backend.name})"
        tok = backend.tokenizer
        self.digit_ids = torch.tensor([tok.convert_tokens_to_ids(str(d)) for d in range(10)])

    @property
    def key(self) -> dict:
        return {"simulator": "logprob", "backend": cache_key(self.backend), "prompts": PROMPTS_SHA256[:16]}

    def _encode(self, text: str) -> list[int]:
        return self.backend.tokenizer.encode(text, add_special_tokens=False)

    def _ids_and_slots(self, explanation: str, tokens: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
        user = (
            f"Neuron 1\nExplanation of neuron 1 behavior: {EXPLANATION_PREFIX} {explanation}\nActivations:\n"
            f"<start>\n{self.PLACEHOLDER}<end>"
        )
        text = cast(  # tokenize=False: the prompt as a string
            str,
            self.backend.tokenizer.apply_chat_template(
                [{"role": "system", "content": SIMULATOR_SYSTEM}, {"role": "user", "content": user}], tokenize=False
            ),
        )
        prefix, suffix = text.split(self.PLACEHOLDER)
        ids, slots = self._encode(prefix), []
        for token in tokens:
            ids += self._encode(f"{_show_token(token)}\t")
            slots.append(len(ids) - 1)  # the logits here predict the level
            ids += self._encode("unknown\n")
        ids += self._encode(suffix)
        return torch.tensor([ids], device=self.backend.device), slots

    def _one(self, explanation: str, tokens: Sequence[str]) -> np.ndarray:
        ids, slots = self._ids_and_slots(explanation, tokens)
        if ids.shape[1] > self.backend.max_prompt_tokens:
            raise BackendError(f"simulation prompt of {ids.shape[1]} tokens exceeds max_prompt_tokens")
        with torch.no_grad():
            # only the slots are unembedded (a 49k-token vocabulary at every one of ~450 positions costs a fifth of
            # the pass)
            keep = torch.tensor(slots, device=ids.device)
            logits = self.backend.model(ids, logits_to_keep=keep).logits[0][:, self.digit_ids].cpu()
        return (logits.float().softmax(-1) @ torch.arange(10, dtype=torch.float32)).numpy()

    def simulate(self, explanation: str, records: Sequence[list[str]]) -> list[np.ndarray]:
        return [self._one(explanation, tokens) for tokens in records]
