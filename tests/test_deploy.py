"""deploy/: three replicas behind a load balancer, on one PostgreSQL, with no secret in any file.

The compose file, the HAProxy config, the systemd template unit and the replicas' config are read as their tools
read them (YAML, TOML through CardBridge's own loader, unit lines), so removing a replica, pointing one at another
database or writing a password into a file fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url, text

from connector.core.config import load_config
from connector.state.db import MIGRATIONS
from tests.conftest import PG_ADMIN_URL, _postgres_database

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
CONFIG_IN_CONTAINER = "/etc/cardbridge/cardbridge.toml"
#: Names whose values are secrets: they may only be placeholders.
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|CONSUMER_KEY|TOKEN_KEY)", re.IGNORECASE)
PLACEHOLDER = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")
COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines, as compose's ``.env`` and systemd's ``EnvironmentFile=`` read them (no quoting used)."""
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` against ``env``."""

    def one(match: re.Match[str]) -> str:
        name, kind, arg = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise AssertionError(f"compose would stop: {arg}")
        return arg or ""

    return COMPOSE_VAR.sub(one, value)


def replicas(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the daemon: ``cardbridge … run``."""
    return {name: s for name, s in doc["services"].items() if s.get("command", [])[-1:] == ["run"]}


def replica_environment(service: dict[str, Any]) -> dict[str, str]:
    """What a replica's process sees: deploy/.env (its template here) and then the service's ``environment``."""
    env = {}
    for entry in service["env_file"]:
        path = entry["path"] if isinstance(entry, dict) else entry
        assert path == ".env", "the replicas take their secrets from deploy/.env"
        env.update(env_file(DEPLOY / ".env.example"))
    env.update({key: str(value) for key, value in service["environment"].items()})
    return env


def test_three_replicas_run_the_same_config_mounted_read_only():
    services = replicas(compose())
    assert sorted(services) == ["cardbridge-1", "cardbridge-2", "cardbridge-3"]
    for service in services.values():
        assert service["command"] == ["--config", CONFIG_IN_CONTAINER, "run"]
        [mount] = [v for v in service["volumes"] if v["target"] == CONFIG_IN_CONTAINER]
        assert mount == {
            "type": "bind",
            "source": "./cardbridge.toml",
            "target": CONFIG_IN_CONTAINER,
            "read_only": True,
        }
    # Everything but the host name is the same definition.
    shapes = [{k: v for k, v in s.items() if k != "hostname"} for s in services.values()]
    assert shapes[0] == shapes[1] == shapes[2]
    assert len({s["hostname"] for s in services.values()}) == 3
    assert (DEPLOY / "Dockerfile").is_file() and shapes[0]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_every_replica_is_health_checked_on_healthz_and_the_balancer_depends_on_them():
    doc = compose()
    services = replicas(doc)
    for service in services.values():
        port = service["environment"]["CARDBRIDGE_PORT"]
        check = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in check
    balancer = doc["services"]["lb"]
    assert balancer["image"].startswith("haproxy:")
    assert set(services) <= set(balancer["depends_on"])
    [mount] = balancer["volumes"]
    assert mount["read_only"] is True and mount["target"] == "/usr/local/etc/haproxy/haproxy.cfg"
    haproxy = (DEPLOY / mount["source"]).read_text(encoding="utf-8")
    backend = haproxy.split("backend cardbridge", 1)[1]
    assert re.search(r"^\s*balance roundrobin$", backend, re.M)
    assert re.search(r"^\s*option httpchk GET /healthz$", backend, re.M)
    assert re.search(r"^\s*default-server check\b", backend, re.M)
    checked = re.findall(r"^\s*server \S+ (\S+)$", backend, re.M)  # not backups: those carry more words
    assert sorted(checked) == [f"{name}:{s['environment']['CARDBRIDGE_PORT']}" for name, s in sorted(services.items())]
    assert not re.search(r"^\s*(cookie|stick|hash-type|balance source)\b", haproxy, re.M), "no sticky sessions"


def test_the_replicas_state_url_is_the_postgres_service(monkeypatch):
    doc = compose()
    postgres = doc["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    dotenv = env_file(DEPLOY / ".env.example")
    password = interpolate(postgres["environment"]["POSTGRES_PASSWORD"], dotenv)
    for service in replicas(doc).values():
        assert "postgres" in service["depends_on"]
        for key, value in replica_environment(service).items():
            monkeypatch.setenv(key, value)
        config = load_config(DEPLOY / "cardbridge.toml")  # every section, every ${VAR}: what `run` reads
        url = make_url(config.state.url)
        assert url.drivername == "postgresql+psycopg"
        assert (url.host, url.port) == ("postgres", 5432)
        assert url.username == postgres["environment"]["POSTGRES_USER"]
        assert url.database == postgres["environment"]["POSTGRES_DB"]
        assert url.password == password
        assert config.state.shares_rate_limits, "the replicas spend one forum budget together, not one each"
        assert config.server.listen == f"0.0.0.0:{service['environment']['CARDBRIDGE_PORT']}"


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def _url_passwords(node: Any) -> list[str]:
    """The password of every URL written anywhere in ``node`` (``scheme://user:password@host``)."""
    return re.findall(r"://[^:/@\s]+:([^@\s]+)@", " ".join(_strings(node)))


def _secret_values(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string under a key that names a secret, with its path."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            if isinstance(value, str) and SECRET_NAME.search(str(key)):
                found.append((where, value))
            else:
                found += _secret_values(value, where)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _secret_values(value, f"{path}[{index}]")
    return found


def test_no_secret_is_written_in_a_deploy_file():
    import tomllib

    doc = compose()
    for where, value in _secret_values(doc):
        assert PLACEHOLDER.match(value), f"compose.yaml{where} must be ${{VAR}}, not a literal"
    config = tomllib.loads((DEPLOY / "cardbridge.toml").read_text(encoding="utf-8"))
    secrets = _secret_values(config)
    assert {w for w, _ in secrets} >= {".shop.consumer_secret", ".communities.forum.api_key"}
    for where, value in secrets:
        assert PLACEHOLDER.match(value), f"cardbridge.toml{where} must be ${{VAR}}, not a literal"
    assert _url_passwords(config) == ["${POSTGRES_PASSWORD}"], "the state URL's password is a placeholder"
    for password in _url_passwords(doc):
        assert PLACEHOLDER.match(password), f"a URL in compose.yaml has a password: {password[:2]}…"
    for example in (DEPLOY / ".env.example", DEPLOY / "systemd" / "cardbridge.env.example"):
        for key, value in env_file(example).items():
            if SECRET_NAME.search(key):
                assert value.startswith("change-me"), f"{example.name}: {key} must be a change-me placeholder"
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    for line in dockerfile.splitlines():
        assert not (re.match(r"\s*(ENV|ARG)\b", line) and SECRET_NAME.search(line)), line
    assert ".env" not in dockerfile
    assert "deploy/.env" in (DEPLOY.parent / ".gitignore").read_text(encoding="utf-8").splitlines()


def unit(path: Path) -> dict[str, list[str]]:
    """A unit file's ``Key=value`` lines (a key may repeat)."""
    keys: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def test_the_systemd_template_runs_one_replica_per_port(monkeypatch):
    keys = unit(DEPLOY / "systemd" / "cardbridge@.service")
    assert keys["ExecStart"][0].endswith(f"cardbridge --config {CONFIG_IN_CONTAINER} run")
    assert keys["Restart"] == ["always"] and keys["KillSignal"] == ["SIGTERM"]
    assert int(keys["TimeoutStopSec"][0]) > 60, "longer than a remote call's retries (max_retry_seconds)"
    assert "CARDBRIDGE_PORT=%i" in keys["Environment"]
    [env_path] = keys["EnvironmentFile"]
    example = env_file(DEPLOY / "systemd" / "cardbridge.env.example")
    # EnvironmentFile= overrides Environment=: the file must leave the port to the instance.
    assert "CARDBRIDGE_PORT" not in example and env_path == "/etc/cardbridge/cardbridge.env"
    for key, value in {**example, "CARDBRIDGE_PORT": "8082"}.items():
        monkeypatch.setenv(key, value)
    config = load_config(DEPLOY / "cardbridge.toml")  # the same file the compose replicas read
    assert config.server.listen == f"{example['CARDBRIDGE_BIND']}:8082"
    assert make_url(config.state.url).host == example["CARDBRIDGE_DB_HOST"].split(":")[0]


#: One replica's start: open the store (which migrates it), after the parent says go.
MIGRATE = """
import sys
from connector.state.db import make_engine, migrate
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
migrate(engine)
"""


def test_replicas_starting_together_on_a_new_database_all_migrate_it():
    """Three replicas started at once on an empty PostgreSQL database: each runs the migrations at start, one at a
    time (an advisory lock), so none fails and the schema is at head once."""
    admin, name = _postgres_database()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        starts = [
            subprocess.Popen(
                [sys.executable, "-c", MIGRATE, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        for process in starts:
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        for process in starts:  # as close together as three writes go
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        assert [process.wait(60) for process in starts] == [0, 0, 0]
        engine = create_engine(url)
        with engine.connect() as conn:
            versions = conn.execute(text("select version_num from alembic_version")).scalars().all()
            tables = conn.execute(text("select count(*) from pg_tables where schemaname = 'public'")).scalar_one()
        engine.dispose()
        assert versions == [ScriptDirectory(str(MIGRATIONS)).get_current_head()]
        assert tables > 10
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
