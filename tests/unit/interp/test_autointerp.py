"""Automated interpretability: explainer, simulator and scorer on features whose right answer is known; record
selection; persistence when a backend fails; LLM backends against a fake HTTP server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from saelib.baselines.directions import LinearDictionary
from saelib.interp.autointerp import ProtocolConfig, score_dictionary, score_feature, summarize
from saelib.interp.explanations import (
    TokenExplainer,
    TokenSimulator,
    discretize,
    format_explanation,
    parse_explanation,
    pearson,
)
from saelib.interp.fragments import Fragments, Record, select_records
from saelib.interp.llm_explainer import (
    EXPLANATION_PREFIX,
    BackendError,
    LLMExplainer,
    LLMSimulator,
    OpenAICompatibleBackend,
)

HOOK = "blocks.0.hook_resid_post"
WORDS = [" the", " cat", " sat", " on", " mat", " a", " dog", " ran", " to", " park", " and", " then"]


def text(rng, n):
    return [WORDS[i] for i in rng.integers(0, len(WORDS), n)]


def records_where(rng, fires, n_records=5, length=32):
    """Records of random words whose activation is ``fires(tokens, i)`` (a level) at token i."""
    out = []
    for _ in range(n_records):
        toks = text(rng, length)
        out.append(Record(toks, np.array([fires(toks, i) for i in range(length)], dtype=float)))
    return out


def on_cat(tokens, i):
    return 3.0 if tokens[i] == " cat" else 0.0


def after_the(tokens, i):
    return 2.0 if i > 0 and tokens[i - 1] == " the" else 0.0


@pytest.mark.parametrize(
    "fires, seed, expected",
    [
        (on_cat, 0, 'Fires on the tokens " cat" (10).'),
        (after_the, 1, 'Fires on the token right after " the" (10).'),
    ],
)
def test_lexical_feature_is_explained_and_simulated_exactly(fires, seed, expected):
    rng = np.random.default_rng(seed)
    explanation = TokenExplainer().explain(records_where(rng, fires))
    assert explanation == expected
    held_out = records_where(rng, fires)
    sims = TokenSimulator().simulate(explanation, [r.tokens for r in held_out])
    assert pearson(np.concatenate(sims), np.concatenate([r.activations for r in held_out])) == pytest.approx(1.0)


def test_noise_feature_scores_near_zero_on_held_out_records():
    rng = np.random.default_rng(2)
    noise = lambda toks, i: float(rng.random() < 0.2) * rng.random()  # noqa: E731
    explanation = TokenExplainer().explain(records_where(rng, noise))
    held_out = records_where(rng, noise, n_records=40)
    sims = TokenSimulator().simulate(explanation, [r.tokens for r in held_out])
    assert abs(pearson(np.concatenate(sims), np.concatenate([r.activations for r in held_out]))) < 0.1


def test_explanation_round_trips_awkward_tokens():
    terms = [('"quoted"', 10), ("new\nline", 7), ("tab\there", 5), (" ünïcode", 3), ("(2)", 1)]
    mode, parsed = parse_explanation(format_explanation("previous", terms))
    assert mode == "previous" and parsed == dict(terms)
    assert parse_explanation(format_explanation("token", [])) == ("token", {})
    with pytest.raises(ValueError, match="not a token explanation"):
        parse_explanation("This neuron likes cats.")


def test_discretize_and_pearson_edge_cases():
    recs = [Record(["a", "b"], np.array([0.0, 2.0])), Record(["c"], np.array([1.0]))]
    assert [lv.tolist() for lv in discretize(recs)] == [[0, 10], [5]]
    assert pearson(np.ones(5), np.arange(5)) == 0.0 and pearson(np.array([1.0]), np.array([2.0])) == 0.0


def test_select_records_follows_the_paper_slices():
    acts = np.zeros((30, 4))
    acts[:25, 0] = np.arange(25, 0, -1)  # fragment i has peak 25 - i; fragments 25..29 never fire
    splits = select_records(acts, seed=0)
    assert splits.explain.tolist() == [0, 4, 8, 12, 16] and splits.score_top.tolist() == [2, 6, 10, 14, 18]
    assert len(splits.score_random) == 5 and set(splits.score_random) <= set(range(25)) and splits.n_firing == 25
    dead = select_records(np.zeros((10, 4)))
    assert dead.n_firing == 0 and len(dead.explain) == len(dead.score_top) == len(dead.score_random) == 0


# ------------------------------------------------------------------ fragments from a real (tiny) activation store


@pytest.fixture()
def fragment_store(tiny_store):
    return tiny_store([HOOK], n=12, length=64)


def test_dictionary_of_the_wrong_width_is_rejected(fragment_store, default_tokenizer):
    fragments = Fragments(fragment_store, default_tokenizer, length=32)
    wrong = LinearDictionary("wrong width", torch.eye(10), torch.zeros(10))
    with pytest.raises(ValueError, match="width 10.*blocks.0.hook_resid_post has width 64"):
        fragments.activations(HOOK, wrong, [0])
    with pytest.raises(ValueError, match="must divide"):
        Fragments(fragment_store, default_tokenizer, length=48)


def test_never_firing_feature_is_scored_as_such(fragment_store, default_tokenizer):
    fragments = Fragments(fragment_store, default_tokenizer, length=32)
    d = fragment_store.width(HOOK)
    dictionary = LinearDictionary("one live, one dead", torch.stack([torch.eye(d)[0], torch.zeros(d)]), torch.zeros(d))
    df = score_dictionary(fragments, HOOK, dictionary, [0, 1], TokenExplainer(), TokenSimulator(), {"test": 1})
    assert df.set_index("feature").loc[1, "status"] == "never fires"
    summary = summarize(df)
    assert summary["never_fires"] == 1 and all(np.isfinite(summary[c]) for c in ("top_and_random", "top", "random"))


class FlakySimulator(TokenSimulator):
    """Works for ``ok`` calls, then fails like an unreachable endpoint."""

    name = "flaky"

    def __init__(self, ok: int):
        self.ok, self.calls = ok, 0

    def simulate(self, explanation, records):
        self.calls += 1
        if self.calls > self.ok:
            raise BackendError("cannot reach http://localhost:9/v1/chat/completions")
        return super().simulate(explanation, records)


def test_scores_survive_a_failing_backend_and_the_rerun_resumes(fragment_store, default_tokenizer):
    fragments = Fragments(fragment_store, default_tokenizer, length=32)
    d = fragment_store.width(HOOK)
    dictionary = LinearDictionary("neurons", torch.eye(d), torch.zeros(d))
    feats = [0, 1, 2, 3, 4]
    failing = FlakySimulator(ok=2)
    with pytest.raises(BackendError, match="cannot reach"):
        score_dictionary(fragments, HOOK, dictionary, feats, TokenExplainer(), failing, {"test": 2})
    resumed = FlakySimulator(ok=100)
    df = score_dictionary(fragments, HOOK, dictionary, feats, TokenExplainer(), resumed, {"test": 2})
    assert resumed.calls == 3  # the two features scored before the failure were kept, not recomputed
    assert df["feature"].tolist() == feats and (df["status"] == "scored").all()
    fresh = score_dictionary(fragments, HOOK, dictionary, feats, TokenExplainer(), FlakySimulator(100), {"test": 3})
    assert np.allclose(fresh["top_and_random"], df["top_and_random"])


def test_planted_token_feature_scores_one_through_the_whole_pipeline(fragment_store, default_tokenizer):
    """A 'dictionary' whose feature is the indicator of one token id scores (almost) 1 on every split."""
    fragments = Fragments(fragment_store, default_tokenizer, length=32)
    tokens = fragments.tokens
    target = int(np.bincount(tokens[:, 1:].ravel()).argmax())

    class TokenIndicator:
        name = "indicator"

    acts = np.where(tokens == target, 5.0, 0.0)
    acts[:, 0] = 0.0  # position 0 is zeroed by the pipeline for every dictionary
    score = score_feature(0, acts, fragments, TokenExplainer(), TokenSimulator(), ProtocolConfig())
    assert score.status == "scored" and score.top_and_random == pytest.approx(1.0)
    assert default_tokenizer.decode([target]) in score.explanation


# ------------------------------------------------------------------ LLM backends


class FakeServer:
    """A local HTTP server on 127.0.0.1. Each POST is answered by ``respond(handler, body)``; by default an
    OpenAI-compatible endpoint answering 200 with ``reply(body) -> bytes``."""

    def __init__(self, reply=None, respond=None):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                try:
                    (respond or outer.answer)(self, body)
                except OSError:
                    pass  # the client hung up (a timeout test): nothing to answer

            def log_message(self, *args):
                pass

        self.reply = reply
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True  # a dripping handler never delays close()
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def answer(self, handler, body):
        data = self.reply(body)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(data)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def chat(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


def test_openai_compatible_explainer_and_simulator_against_a_fake_server():
    recs = [Record([" the", " cat"], np.array([0.0, 4.0]))]

    def reply(body):
        user = body["messages"][-1]["content"]
        if EXPLANATION_PREFIX in user and "unknown" not in user:
            return chat(" the word cat.")
        return chat(" the\t0\n cat\t10")

    server = FakeServer(reply)
    try:
        backend = OpenAICompatibleBackend(server.url, "fake-model", api_key="test-key-1234")
        explanation = LLMExplainer(backend).explain(recs)
        sims = LLMSimulator(backend).simulate(explanation, [[" the", " cat"]])
    finally:
        server.close()
    assert explanation == "the word cat."
    assert sims[0].tolist() == [0.0, 10.0]
    shown = server.requests[0]["messages"][-1]["content"]
    assert " cat\t10" in shown and shown.endswith(EXPLANATION_PREFIX)  # the paper's record format and prompt end
    assert server.requests[0]["model"] == "fake-model" and server.requests[0]["temperature"] == 0


def test_unreachable_endpoint_is_a_clear_error():
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAICompatibleBackend(f"http://127.0.0.1:{port}/v1", "m", timeout=5)
    with pytest.raises(BackendError, match="cannot reach"):
        LLMExplainer(backend).explain([Record(["a"], np.array([1.0]))])


@pytest.mark.parametrize(
    "answer, match",
    [
        (b"<html>502 Bad Gateway</html>", "not a chat completion"),
        (json.dumps({"error": "overloaded"}).encode(), "not a chat completion"),
        (chat("..."), "no usable explanation"),
    ],
)
def test_garbage_answers_are_clear_errors(answer, match):
    server = FakeServer(lambda body: answer)
    try:
        with pytest.raises(BackendError, match=match):
            LLMExplainer(OpenAICompatibleBackend(server.url, "m")).explain([Record(["a"], np.array([1.0]))])
    finally:
        server.close()


def test_simulator_rejects_a_reply_with_the_wrong_number_of_values():
    server = FakeServer(lambda body: chat("a\t3"))
    try:
        with pytest.raises(BackendError, match="1 activations for 3 tokens"):
            LLMSimulator(OpenAICompatibleBackend(server.url, "m")).simulate("cats", [["a", "b", "c"]])
    finally:
        server.close()


# ------------------------------------------------------------------ LLM backend: the key and misbehaving servers

KEY = "sk-test-0123456789abcdef"
RECORD = [Record(["a"], np.array([1.0]))]


def explain(server, **kw):
    return LLMExplainer(OpenAICompatibleBackend(server.url, "m", api_key=KEY, **kw)).explain(RECORD)


def test_redirect_is_not_followed_and_the_key_stays_put():
    elsewhere = FakeServer(lambda body: chat(" cats"))

    def redirect(handler, body):
        handler.send_response(302)
        handler.send_header("Location", elsewhere.url + "/chat/completions")
        handler.end_headers()
        handler.wfile.write(b"moved")

    server = FakeServer(respond=redirect)
    try:
        with pytest.raises(BackendError, match="HTTP 302, a redirect to .*not followed") as err:
            explain(server)
    finally:
        server.close()
        elsewhere.close()
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert elsewhere.headers == [] and "moved" not in str(err.value)  # never contacted; no body in the error


def test_a_server_echoing_the_key_never_puts_it_in_an_error():
    def echo(handler, body):
        handler.send_response(401)
        handler.end_headers()
        handler.wfile.write(f"bad key {handler.headers['Authorization']} ".encode() + b"x" * 5000)

    server = FakeServer(respond=echo)
    backend = OpenAICompatibleBackend(server.url, "m", api_key=KEY)
    try:
        with pytest.raises(BackendError, match=r"HTTP 401: 'bad key Bearer \[API key removed\] x+' \.\.\.") as err:
            LLMExplainer(backend).explain(RECORD)
    finally:
        server.close()
    assert KEY not in str(err.value) and KEY not in repr(backend) and len(str(err.value)) < 400
    server = FakeServer(lambda body: chat(f" my key is {KEY}"))  # a 200 reply that echoes it
    try:
        assert KEY not in explain(server)
    finally:
        server.close()


def drip(head: bytes, body_bytes: int):
    """An answer that sends ``head`` at once, then a byte every 0.2 s (``head`` empty: the status line drips)."""

    def respond(handler, body):
        handler.wfile.write(head)
        for byte in b"HTTP/1.0 200 OK\r\n" if not head else b"x" * body_bytes:
            time.sleep(0.2)
            handler.wfile.write(bytes([byte]))

    return respond


@pytest.mark.parametrize("head", [b"HTTP/1.0 200 OK\r\nContent-Length: 40\r\n\r\n", b""], ids=["body", "headers"])
def test_a_slow_drip_server_fails_at_the_deadline(head):
    server = FakeServer(respond=drip(head, 40))  # 8 s in all; each byte comes well within the socket timeout
    start = time.monotonic()
    try:
        with pytest.raises(BackendError, match="no complete answer within timeout=1.0 s"):
            explain(server, timeout=1.0)
    finally:
        server.close()
    assert time.monotonic() - start < 2.5


def test_an_oversized_answer_is_refused():
    server = FakeServer(lambda body: chat("x" * (2 << 20)))
    try:
        with pytest.raises(BackendError, match="more than max_response_bytes=1048576 bytes"):
            explain(server)
    finally:
        server.close()


def test_the_environment_key_goes_only_to_openai(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = FakeServer(lambda body: chat(" cats"))
    try:
        LLMExplainer(OpenAICompatibleBackend(server.url, "m")).explain(RECORD)
    finally:
        server.close()
    assert "Authorization" not in server.headers[0]  # a local server gets no key unless it is passed
    assert "key=set" in repr(OpenAICompatibleBackend("https://api.openai.com/v1", "gpt"))  # (no connection made)
    assert "key=none" in repr(OpenAICompatibleBackend("https://example.invalid/v1", "m"))


@pytest.mark.parametrize("url", ["http://example.invalid/v1", "http://10.0.0.1:8000/v1", "http://api.openai.com/v1"])
def test_a_key_over_plain_http_is_refused_before_connecting(url, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(ValueError, match="refusing to send an API key over plain http to .*use https://"):
        OpenAICompatibleBackend(url, "m", api_key=None if "openai" in url else KEY)
    for loopback in ["http://localhost:8000/v1", "http://127.0.0.2:8000/v1", "http://[::1]:8000/v1"]:
        OpenAICompatibleBackend(loopback, "m", api_key=KEY)  # local servers may get a key over http
    OpenAICompatibleBackend(url, "m", api_key="")  # no key: nothing to protect
    with pytest.raises(ValueError, match="must not contain user:password@"):
        OpenAICompatibleBackend(f"https://user:{KEY}@example.invalid/v1", "m")


# ------------------------------------------------------------------ LLM backend: what keys the saved scores


def simulated_reply(body):
    """An explanation, or one ``token<TAB>level`` line per ``unknown`` of the prompt."""
    user = body["messages"][-1]["content"]
    if "unknown" not in user:
        return chat(" cats")
    tokens = [line[: -len("\tunknown")] for line in user.splitlines() if line.endswith("\tunknown")]
    return chat("\n".join(f"{t}\t{i % 3}" for i, t in enumerate(tokens)))


def test_scores_from_another_server_with_the_same_model_name_are_not_reused(fragment_store, default_tokenizer):
    fragments = Fragments(fragment_store, default_tokenizer, length=32)
    d = fragment_store.width(HOOK)
    dictionary = LinearDictionary("neurons", torch.eye(d), torch.zeros(d))
    first, second = FakeServer(simulated_reply), FakeServer(simulated_reply)
    try:
        for server in (first, second):
            backend = OpenAICompatibleBackend(server.url, "same-model")
            score_dictionary(
                fragments, HOOK, dictionary, [0], LLMExplainer(backend), LLMSimulator(backend), {"test": 4}
            )
    finally:
        first.close()
        second.close()
    assert first.requests and second.requests  # the second server was asked, not answered from the first's scores
    a, b = (LLMExplainer(OpenAICompatibleBackend(s.url, "same-model")) for s in (first, second))
    assert a.key != b.key and a.key["backend"]["url"] == first.url + "/chat/completions"


# ------------------------------------------------------------------ LLM backend: settings and malformed answers


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 0, -1, "60", True])
def test_timeout_must_be_a_positive_finite_number(timeout):
    with pytest.raises(ValueError, match="timeout must be a positive, finite number"):
        OpenAICompatibleBackend("http://127.0.0.1:9/v1", "m", timeout=timeout)


def test_deeply_nested_json_is_a_malformed_answer():
    server = FakeServer(lambda body: b"[" * 100_000 + b"]" * 100_000)
    try:
        with pytest.raises(BackendError, match=r"not a chat completion: '\[\[\[\["):
            LLMExplainer(OpenAICompatibleBackend(server.url, "m")).explain(RECORD)
    finally:
        server.close()


def not_http(handler, body):
    handler.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n")


def hang_up(handler, body):
    handler.close_connection = True


@pytest.mark.parametrize(
    "respond, match",
    [
        (not_http, r"answered something that is not an HTTP response \(BadStatusLine: .*SSH-2\.0-OpenSSH"),
        (hang_up, "accepted the connection but closed it without a complete answer"),
    ],
)
def test_a_malformed_answer_is_not_called_unreachable(respond, match):
    server = FakeServer(respond=respond)
    try:
        with pytest.raises(BackendError, match=match) as err:
            LLMExplainer(OpenAICompatibleBackend(server.url, "m", timeout=5)).explain(RECORD)
    finally:
        server.close()
    assert "cannot reach" not in str(err.value) and "offline" not in str(err.value)
