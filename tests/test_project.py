"""The project as a user meets it: settings, checks, migrations, compose file, README."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        # The browser tests' async-unsafe switch must not leak into the deploy check.
        env={
            **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-long-random-production-secret-key-for-the-deploy-check-0123456789",
    "ALLOWED_HOSTS": "deliberate.example.org",
}


def test_deploy_check_is_clean_with_production_settings() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key() -> None:
    result = run_manage("check", env={**PRODUCTION, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_migrations_match_the_models() -> None:
    result = run_manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_embedded_default_migrates_and_loads_the_seed_poll_on_sqlite(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "REDIS_URL": ""}
    result = run_manage("quickstart", "--no-serve", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Created poll 'west-putin-exit'" in result.stdout
    assert re.search(r"user 'organiser', password '\S{12,}'", result.stdout)


def test_compose_file_references_only_what_exists() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "live", "worker", "beat"}
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    settings_text = (ROOT / "deliberate" / "settings.py").read_text()
    app = compose["x-app"]
    for variable in app["environment"]:
        assert f'"{variable}"' in settings_text, f"{variable} is not read by settings.py"
    for name in ("web", "live", "worker", "beat"):
        assert services[name]["build"] == "." and (ROOT / "Dockerfile").exists()
    assert "deliberate.wsgi" in services["web"]["command"]
    assert (ROOT / "deliberate" / "wsgi.py").exists()
    # The live rooms' WebSockets are served by daphne from the ASGI application.
    assert services["live"]["command"][0] == "daphne"
    assert "deliberate.asgi:application" in services["live"]["command"]
    assert (ROOT / "deliberate" / "asgi.py").exists()
    assert services["worker"]["command"][:3] == ["celery", "-A", "deliberate"]
    # Only the TLS proxy on the host reaches gunicorn, so its X-Forwarded-For can be trusted.
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["live"]["ports"] == ["127.0.0.1:8001:8001"]
    assert app["environment"]["TRUSTED_PROXY_COUNT"] == "${TRUSTED_PROXY_COUNT:-1}"
    assert "/healthz" in str(services["web"]["healthcheck"])


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```sh\n(.+?)\n```", readme)
    run_command = next(c for c in commands if "quickstart" in c)
    test_command = next(c for c in commands if "bin/pytest" in c)
    assert run_command and test_command in ci


def test_collectstatic_succeeds_with_production_storage(tmp_path: Path) -> None:
    # The manifest storage fails on any reference to a missing file (e.g. a vendored .map).
    result = run_manage(
        "collectstatic", "--noinput", env={**PRODUCTION, "STATIC_ROOT": str(tmp_path)}
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_xdist_worker_has_a_redis_database_of_its_own() -> None:
    from tests.environment import redis_url_of_this_worker

    base = "redis://127.0.0.1:6379/9"
    urls = [redis_url_of_this_worker(base, f"gw{i}") for i in range(4)]
    assert urls == [f"redis://127.0.0.1:6379/{n}" for n in (10, 11, 12, 13)]


def test_web_processes_do_not_load_the_numeric_stack_for_one_admin_page() -> None:
    """A web process (URLs and every admin module loaded) leaves scikit-learn and scipy to
    the worker and the one admin page that groups similar questions: they cost each web
    process about a second of start-up and 70 MB."""
    script = (
        "import sys, django; django.setup(); import deliberate.urls; "
        "from django.contrib import admin; admin.autodiscover(); "
        "print(sorted(m for m in ('sklearn', 'scipy', 'statsmodels') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "deliberate.settings"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.stdout.strip() == "[]"


def test_embedded_default_computes_results_on_sqlite(tmp_path: Path) -> None:
    """The results engine reads answers through the ORM on SQLite (no COPY there)."""
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "REDIS_URL": ""}
    assert run_manage("migrate", "-v0", env=env).returncode == 0
    assert run_manage("loadpoll", "seeds/west-putin-exit.yaml", env=env).returncode == 0
    script = (
        "from surveys.models import Poll; from results.simulate import "
        "add_simulated_participants; from results.compute.recompute import recompute_poll; "
        "p = Poll.objects.get(slug='west-putin-exit'); "
        "add_simulated_participants(poll=p, n=20, seed=3); s = recompute_poll(p.pk); "
        "print(s.n_participants, s.payload['meta']['n_answers'], len(s.payload['items']))"
    )
    result = run_manage("shell", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    n, answers, items = map(int, result.stdout.split()[-3:])
    assert n == 20 and answers > 20 * 40 and items > 0
