"""Two gateways sharing only a real Redis (each with its own CODEX_HOME and data folder, like two machines):
conversations continued across them, DELETE seen by both, one rate-limit budget, a Redis restart mid-run.
Instance A runs the app-server engine, B the exec engine: the stored history is engine-neutral."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from app.store import RedisStore
from tests.fakes.provider import FakeProvider, Script, request_text
from tests.harness import FAKE_MODEL, REPO, RunningGateway, free_port, run_gateway, wait_for, write_codex_home
from tests.integration.test_operations import run_cli
from tests.redis_server import RedisServer

Pair = tuple[RunningGateway, RunningGateway]
KEYS = ("sk-alice", "sk-bob")


@contextmanager
def two_gateways(
    provider: FakeProvider, workdir: Path, folder: Path, redis_url: str, **settings: str
) -> Iterator[Pair]:
    with ExitStack() as stack:
        running = []
        for name, engine in (("a", "app-server"), ("b", "exec")):
            home = write_codex_home(folder / f"home-{name}", provider.base_url)
            running.append(
                stack.enter_context(
                    run_gateway(
                        home, workdir, folder / f"gateway-{name}.log", CODEX_STORE_URL=redis_url, CODEX_ENGINE=engine,
                        CODEX_TIMEOUT="20", PROXY_API_KEY=",".join(KEYS), **settings,
                    )
                )
            )  # fmt: skip
        yield running[0], running[1]


@pytest.fixture(scope="module")
def pair(
    provider: FakeProvider, workdir: Path, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    with two_gateways(provider, workdir, tmp_path_factory.mktemp("pair"), redis_server.url) as gateways:
        yield gateways


def owner(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def last_request_with(provider: FakeProvider, marker: str) -> str:
    return request_text([body for body in provider.requests if marker in json.dumps(body)][-1])


def test_a_conversation_continues_alternately_on_both(pair: Pair, provider: FakeProvider) -> None:
    clients = [gateway.client(KEYS[0]) for gateway in pair]
    previous = None
    # exec sends the whole history as one prompt, where the fake model would obey the first marker: one, at the end
    marker = provider.script("scale-last", Script(deltas=["the last answer"]))
    for turn in range(4):
        text = f"question {turn}" + (f" {marker}" if turn == 3 else "")
        created = clients[turn % 2].responses.create(model=FAKE_MODEL, input=text, previous_response_id=previous)
        assert created.output_text == ("the last answer" if turn == 3 else "pong")
        assert created.previous_response_id == previous
        previous = created.id
    seen = last_request_with(provider, "scale-last")
    assert all(f"question {turn}" in seen for turn in range(4)) and seen.count("pong") == 3
    for client in clients:  # each instance serves what the other stored
        assert client.responses.retrieve(previous).output_text == "the last answer"
        assert client.responses.input_items.list(previous).data[0].content[0].text.startswith("question 3")
    with pytest.raises(openai.NotFoundError):
        pair[1].client(KEYS[1]).responses.retrieve(previous)  # another key, another instance: still not its own


def test_delete_on_one_is_seen_by_the_other(pair: Pair) -> None:
    a, b = (gateway.client(KEYS[0]) for gateway in pair)
    created = a.responses.create(model=FAKE_MODEL, input="short-lived")
    assert b.responses.retrieve(created.id).id == created.id
    b.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        a.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        a.responses.create(model=FAKE_MODEL, input="again", previous_response_id=created.id)
    assert caught.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        a.responses.delete(created.id)


async def test_items_stored_by_one_instance_are_found_from_another(pair: Pair, redis_server: RedisServer) -> None:
    """What item_reference resolves against: output and input items, by id, for their owner only."""
    created = (
        pair[0]
        .client(KEYS[0])
        .responses.create(
            model=FAKE_MODEL, input=[{"type": "message", "id": "msg_client_given", "role": "user", "content": "hi"}]
        )
    )
    elsewhere = RedisStore(redis_server.url, redis_server.url, 30, timeout=2)  # a third instance's view
    try:
        answer = await elsewhere.find_item(owner(KEYS[0]), created.output[-1].id)
        with pair[1].http(headers={"Authorization": f"Bearer {KEYS[0]}"}) as http:
            assert answer == http.get(f"/v1/responses/{created.id}").json()["output"][-1]
        assert answer["content"][0]["text"] == created.output_text
        given = await elsewhere.find_item(owner(KEYS[0]), "msg_client_given")
        assert given is not None and given["content"][0]["text"] == "hi"
        assert await elsewhere.find_item(owner(KEYS[1]), created.output[-1].id) is None
        pair[1].client(KEYS[0]).responses.delete(created.id)
        assert await elsewhere.find_item(owner(KEYS[0]), created.output[-1].id) is None
        assert await elsewhere.find_item(owner(KEYS[0]), "msg_client_given") is None
    finally:
        await elsewhere.close()


def test_item_references_are_resolved_by_the_other_instance(pair: Pair, provider: FakeProvider) -> None:
    """A function call stored by A (app-server) referenced from B (exec), B's answer referenced from A, as the
    Vercel AI SDK's `item_reference` items do; another key's reference to them is not found."""
    weather = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    ask = provider.script("scale-refs-ask", Script(calls=[[{"name": "get_weather", "arguments": "{}"}]]))
    a, b = pair[0].client(KEYS[0]), pair[1].client(KEYS[0])
    asked = a.responses.create(model=FAKE_MODEL, input=f"weather? {ask}", tools=[weather])
    call = asked.output[-1]
    assert call.type == "function_call"
    thanks = provider.script("scale-refs-thanks", Script(deltas=["You are welcome."]))
    answered = b.responses.create(
        model=FAKE_MODEL,
        input=[
            {"type": "item_reference", "id": call.id},
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
            {"role": "user", "content": f"thanks {thanks}"},
        ],
    )
    assert answered.output_text == "You are welcome."
    seen = last_request_with(provider, "scale-refs-thanks")
    assert "get_weather" in seen and "sunny, 21C" in seen
    again = provider.script("scale-refs-again", Script(deltas=["Again."]))
    a.responses.create(
        model=FAKE_MODEL,
        input=[{"type": "item_reference", "id": answered.output[-1].id}, {"role": "user", "content": again}],
    )
    assert "You are welcome." in last_request_with(provider, "scale-refs-again")
    with pytest.raises(openai.NotFoundError) as caught:
        pair[1].client(KEYS[1]).responses.create(model=FAKE_MODEL, input=[{"type": "item_reference", "id": call.id}])
    assert caught.value.body["code"] == "item_not_found" and call.id in caught.value.body["message"]


def test_two_instances_enforce_one_rate_limit_budget(
    provider: FakeProvider, workdir: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    """RATE_LIMIT_STORAGE_URI unset: the limits live in the store's Redis, so they are shared."""
    with two_gateways(provider, workdir, tmp_path, redis_server.url, RATE_LIMIT_PER_MINUTE="4") as (a, b):
        statuses = []
        for n in range(5):
            with (a if n % 2 else b).http(headers={"Authorization": f"Bearer {KEYS[0]}"}) as http:
                statuses.append(http.get("/v1/models"))
        assert [r.status_code for r in statuses] == [200, 200, 200, 200, 429]
        assert statuses[-1].json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(statuses[-1].headers["retry-after"]) <= 60
        for gateway in (a, b):  # another key has its own budget, on either instance
            with gateway.http(headers={"Authorization": f"Bearer {KEYS[1]}"}) as http:
                assert http.get("/v1/models").status_code == 200


def metric(gateway: RunningGateway, name: str) -> float:
    with gateway.http(headers={"Authorization": f"Bearer {KEYS[0]}"}) as http:  # /metrics and /ready: key holders
        text = http.get("/metrics").text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


def test_a_redis_restart_mid_run(provider: FakeProvider, workdir: Path, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    try:
        with two_gateways(provider, workdir, tmp_path, redis.url, RATE_LIMIT_PER_MINUTE="1000") as (a, b):
            check_outage_and_recovery(provider, redis, a, b)
    finally:
        redis.stop()


def check_outage_and_recovery(provider: FakeProvider, redis: RedisServer, a: RunningGateway, b: RunningGateway) -> None:
    alice_a, alice_b = a.client(KEYS[0]), b.client(KEYS[0])
    first = alice_a.responses.create(model=FAKE_MODEL, input="before the outage: the sky is green")
    second = alice_b.responses.create(model=FAKE_MODEL, input="still before", previous_response_id=first.id)
    redis.stop()

    # what does not need the store keeps working (the rate limit lets requests through, warning once)
    for client in (alice_a, alice_b, alice_a):
        chat = client.chat.completions.create(model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}])
        assert chat.choices[0].message.content == "pong"
    assert alice_b.responses.create(model=FAKE_MODEL, input="x", store=False).output_text == "pong"
    assert a.log().count("rate-limit storage failed") == 1

    # what needs it is a 503 in the OpenAI envelope
    auth = {"Authorization": f"Bearer {KEYS[0]}"}
    with a.http(headers=auth) as http:
        chained = http.post(
            "/v1/responses", json={"model": FAKE_MODEL, "input": "next", "previous_response_id": second.id}
        )
        fetched = [http.get(f"/v1/responses/{first.id}"), http.get(f"/v1/responses/{first.id}/input_items")]
        deleted = http.delete(f"/v1/responses/{first.id}")
    for response in (chained, *fetched, deleted):
        assert response.status_code == 503 and response.headers["retry-after"]
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == "store_unavailable"
        assert str(redis.port) not in error["message"]

    # an answer that cannot be stored still reaches its client: named (non-stream), logged and counted
    with a.http(headers=auth) as http:
        unstored = http.post("/v1/responses", json={"model": FAKE_MODEL, "input": "answer me anyway"})
    assert unstored.status_code == 200 and unstored.json()["output"][-1]["content"][0]["text"] == "pong"
    assert unstored.headers["x-codex-not-stored"] == "store unavailable"
    events = list(alice_b.responses.create(model=FAKE_MODEL, input="streamed anyway", stream=True))
    assert events[-1].type == "response.completed" and events[-1].response.output_text == "pong"
    assert metric(a, "codex_wrapper_store_write_failures_total") == 1
    assert wait_for(lambda: metric(b, "codex_wrapper_store_write_failures_total") == 1, timeout=5)
    assert metric(a, "codex_wrapper_store_up") == 0 and metric(a, "codex_wrapper_rate_limit_storage_errors_total") >= 2
    assert f"response {unstored.json()['id']} answered but not stored" in a.log()
    with a.http(headers=auth) as http:
        ready = http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded" and ready.json()["store"] == {
        "backend": "redis",
        "state": "unavailable",
    }

    redis.start()  # same port and folder: the append-only file is read back
    assert alice_b.responses.retrieve(first.id).output_text == "pong"
    marker = provider.script("scale-after", Script(deltas=["after"]))
    third = alice_a.responses.create(model=FAKE_MODEL, input=f"after {marker}", previous_response_id=second.id)
    assert third.output_text == "after"
    seen = last_request_with(provider, "scale-after")
    assert "the sky is green" in seen and "still before" in seen
    with pytest.raises(openai.NotFoundError):
        alice_a.responses.retrieve(unstored.json()["id"])  # answered during the outage, never stored
    with a.http(headers=auth) as http:
        assert http.get("/ready").json()["status"] == "ready"
    assert metric(a, "codex_wrapper_store_up") == 1
    assert "rate-limit storage is back" in a.log() and a.log().count("rate-limit storage failed") == 1


def test_ready_names_the_store(pair: Pair) -> None:
    auth = {"Authorization": f"Bearer {KEYS[0]}"}
    body = httpx.get(f"{pair[0].base_url}/ready", headers=auth, timeout=10).json()
    assert body["status"] == "ready" and body["store"] == {"backend": "redis", "state": "ok"}


def test_doctor_names_the_store_and_its_state(provider: FakeProvider, tmp_path: Path) -> None:
    home = write_codex_home(tmp_path / "home", provider.base_url)
    redis = RedisServer(tmp_path / "redis").start()
    try:
        up = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(home), CODEX_STORE_URL=redis.url, PORT=str(free_port()))
    finally:
        redis.stop()
    down = run_cli("doctor", tmp_path, CODEX_CONFIG_DIR=str(home), CODEX_STORE_URL=redis.url, PORT=str(free_port()))
    line = next(line for line in up.stdout.splitlines() if "store:" in line)
    assert up.returncode == 0, up.stdout
    assert line.startswith(f"ok   store: redis at {redis.url} answering (version ") and "appendonly on" in line
    line = next(line for line in down.stdout.splitlines() if "store:" in line)
    assert down.returncode == 1 and line.startswith(f"FAIL store: redis at {redis.url} is unavailable")
    assert "Fix: start Redis or correct CODEX_STORE_URL" in line


class ComposeLoader(yaml.SafeLoader):
    """YAML as compose reads it: `!reset` (empty a list from the base file) is a tag PyYAML does not know."""


ComposeLoader.add_constructor("!reset", lambda loader, node: [])


def test_the_compose_profile_puts_two_gateways_on_one_redis_behind_haproxy() -> None:
    services = yaml.load((REPO / "docker-compose.yml").read_text(), ComposeLoader)["services"]
    assert {name for name, s in services.items() if s.get("profiles") == ["scale"]} == {
        "redis", "gateway-1", "gateway-2", "balancer"
    }  # fmt: skip
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis and "noeviction" in redis
    assert '--requirepass "$$REDIS_PASSWORD"' in redis and 'test -n "$$REDIS_PASSWORD" ||' in redis  # never without
    assert services["redis"]["environment"]["REDIS_PASSWORD"] == "${SCALE_REDIS_PASSWORD:-}"
    gateways = [services["gateway-1"], services["gateway-2"]]
    for gateway in gateways:
        assert gateway["environment"]["CODEX_STORE_URL"].endswith("redis://:${SCALE_REDIS_PASSWORD:-}@redis:6379/0}")
        assert "RATE_LIMIT_STORAGE_URI" not in gateway["environment"]  # the limits follow the store
    homes = [next(v for v in g["volumes"] if v.endswith(":/home/codex/.codex")) for g in gateways]
    workspaces = [next(v for v in g["volumes"] if v.endswith(":/workspace")) for g in gateways]
    assert homes[0] != homes[1] and workspaces[0] != workspaces[1]  # per instance: login, workspace
    balancer = services["balancer"]["environment"]
    assert (balancer["GATEWAY_1"], balancer["GATEWAY_2"]) == ("gateway-1:8000", "gateway-2:8000")
    config = (REPO / "deploy" / "scale" / "haproxy.cfg").read_text()
    assert '"${GATEWAY_1}"' in config and '"${GATEWAY_2}"' in config
    host = yaml.load((REPO / "deploy" / "scale" / "host-network.yml").read_text(), ComposeLoader)["services"]
    assert {name: s["network_mode"] for name, s in host.items()} == dict.fromkeys(
        ("redis", "gateway-1", "gateway-2", "balancer"), "host"
    )


@contextmanager
def balancer(pair: Pair, folder: Path) -> Iterator[str]:
    """The recipe's own haproxy.cfg (Debian's HAProxy) in front of `pair`, without Docker's DNS resolver."""
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    assert haproxy, "haproxy not found: run `make test` (it installs it) or `apt-get install haproxy`"
    config = (REPO / "deploy" / "scale" / "haproxy.cfg").read_text()
    config = re.sub(r"\nresolvers docker\n(    .*\n)+", "\n", config).replace(" resolvers docker", "")
    config = config.replace("inter 5s", "inter 100ms")  # checks every 0.1 s: a failing one shows at once
    (folder / "haproxy.cfg").write_text(config)
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin", "LB_BIND": f"127.0.0.1:{port}",
        "GATEWAY_1": pair[0].base_url.removeprefix("http://"), "GATEWAY_2": pair[1].base_url.removeprefix("http://"),
    }  # fmt: skip
    with (folder / "haproxy.log").open("wb") as log:
        process = subprocess.Popen([haproxy, "-db", "-f", str(folder / "haproxy.cfg")], env=env, stdout=log, stderr=log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def test_the_recipes_balancer_spreads_turns_over_both_gateways(
    provider: FakeProvider, workdir: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The compose recipe as it runs: its HAProxy config, gateways answering only the Host names the recipe lets
    them (its health check must send one of them), a conversation continued through the balancer."""
    hosts = {"CODEX_ALLOWED_HOSTS": "localhost,127.0.0.1,::1"}  # the recipe's default
    with two_gateways(provider, workdir, tmp_path, redis_server.url, **hosts) as pair, balancer(pair, tmp_path) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEYS[0], max_retries=0)
        assert wait_for(lambda: answers(f"{url}/ready"), timeout=20)  # HAProxy listens and a gateway is up
        time.sleep(1)  # ten health checks per gateway: one refused by its Host allow-list takes it out (fall 2)
        previous = None
        for n in range(4):
            reply = client.responses.create(model=FAKE_MODEL, input=f"turn {n}", previous_response_id=previous)
            assert reply.output_text == "pong"
            previous = reply.id
        log = (tmp_path / "haproxy.log").read_text()
        served = re.findall(r"gateways/(gateway-[12]) .* 200 ", log)
        assert sorted(set(served)) == ["gateway-1", "gateway-2"], log[-2000:]  # both in rotation, both healthy
        assert "is DOWN" not in log
