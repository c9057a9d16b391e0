"""Settings for Deliberate: one file, driven by the environment, with safe development defaults.

Every value that differs between a laptop and production comes from an environment variable.
Unset, the project runs on the embedded default: an SQLite file in ``var/`` and Celery tasks
executed in-process, so a fresh clone works with no services at all.
"""

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# Development is the default, as in most Django projects; production sets DEBUG=false.
DEBUG = env_bool("DEBUG", default=True)
# The insecure key exists only so `runserver` works out of the box; production must set one.
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # First, so `runserver` (and `quickstart`) serve the ASGI app: HTTP and the live rooms'
    # WebSockets from one command.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "surveys",
    "surveys.live",
    "results",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "deliberate.urls"
WSGI_APPLICATION = "deliberate.wsgi.application"
ASGI_APPLICATION = "deliberate.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The embedded default is an SQLite file; DATABASE_URL switches to PostgreSQL (or anything
# dj-database-url understands). Health checks drop connections a restarted server has closed.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        conn_max_age=env_int("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The SQLite file lives in var/ so a fresh clone creates it on first migrate.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("uk", _("Ukrainian"))]
LOCALE_PATHS = [BASE_DIR / "deliberate" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
# API imports over the inline limit (results.exports.imports.MAX_UPLOAD_BYTES) are stored under
# MEDIA_ROOT/imports/ and imported by the worker; this caps them (bytes).
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 1024**3)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Redis is a broker and a counter store, never the source of truth.
REDIS_URL = env_str("REDIS_URL")
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A Redis that hangs must not hang pages: the cache is an optimisation.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# The live rooms' fan-out (Django Channels): Redis when REDIS_URL is set, so every ASGI
# process and the Celery workers reach every room; in memory in the embedded default (one
# process). PostgreSQL holds every message; the layer only carries them.
CHANNEL_LAYERS = {
    "default": (
        {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's pool raises (does not wait) past max_connections; joins and
            # sends of many members at once each hold a connection briefly.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env_int("LIVE_REDIS_CONNECTIONS", 1000),
                    }
                ],
                "capacity": 1000,
                "expiry": 30,
            },
        }
        if REDIS_URL
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
}
# How often beat's sweeper ticks live rooms whose deadline passed (each deadline also has
# its own task; the sweeper covers lost tasks and restarts).
LIVE_SWEEP_SECONDS = env_int("LIVE_SWEEP_SECONDS", 10)

# Celery. Without REDIS_URL tasks run eagerly in-process (the embedded default).
CELERY_BROKER_URL = REDIS_URL or "memory://"
# kombu's Redis transport with a fix for a worker that dies when Redis does mid-task
# (deliberate/broker.py says why).
CELERY_BROKER_TRANSPORT = "deliberate.broker:Transport" if REDIS_URL else None
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged only once it finished, so a killed worker's task is delivered again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": 3,
    "socket_connect_timeout": 3,
    # Must exceed the longest task, or Redis re-delivers a task that is still running.
    "visibility_timeout": CELERY_TASK_TIME_LIMIT * 2,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"socket_timeout": 3, "socket_connect_timeout": 3}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Task modules the worker must load (results.tasks holds every results task: recompute,
# exports, imports, webhooks).
CELERY_IMPORTS = ["results.tasks", "surveys.journey.reminders", "surveys.live.tasks"]
CELERY_BEAT_SCHEDULE = {
    "reconcile-stale-results": {
        "task": "results.tasks.reconcile",
        "schedule": env_int("RECONCILE_SECONDS", 60),
    },
    "purge-expired-exports": {"task": "results.jobs.purge_expired_exports", "schedule": 3600},
    "send-due-webhooks": {"task": "results.jobs.send_due_webhooks", "schedule": 30},
    "send-due-reminders": {"task": "surveys.reminders.send_due_reminders", "schedule": 60},
    "sweep-live-rooms": {"task": "live.sweep", "schedule": LIVE_SWEEP_SECONDS},
}
# Email (the participants' reminders): printed to the console in the embedded default; set
# EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and the EMAIL_* variables to send.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = 10
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Deliberate <noreply@localhost>")
# Webhooks reach public addresses only; tests that deliver to a local server turn this on.
WEBHOOK_ALLOW_LOOPBACK = env_bool("WEBHOOK_ALLOW_LOOPBACK", default=False)
# The ports a webhook may target (comma-separated): 443 only, so deliveries cannot probe other
# services; tests that deliver to a local server set their port.
WEBHOOK_ALLOWED_PORTS = [int(port) for port in env_list("WEBHOOK_ALLOWED_PORTS", "443")]
# The longest lifetime of a researcher API token, in days.
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    # Jobs (export, import) and webhook deliveries each have a "state": name the two choice sets.
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "results.models.JobState",
        "DeliveryStateEnum": "results.models.WebhookDelivery.State",
    },
    "TITLE": "Deliberate research API",
    "DESCRIPTION": "Poll definitions, answers and results of Deliberative Polls, for researchers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGIN_URL = "admin:login"
# A failed CSRF check shows a friendly page in the participant's language (JSON under /api/).
CSRF_FAILURE_VIEW = "deliberate.errors.csrf_failure"

# Production hardening; `manage.py check --deploy` is clean when DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies in front of the app append to X-Forwarded-For (1 behind the recommended TLS
# proxy); 0 trusts no such header and uses the connection's address. See access.client_ip.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# The API's per-address throttle reads the same chain (DRF's default trusts any header).
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXY_COUNT
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content Security Policy on every page (django-csp): no inline script or style anywhere, so an
# injected <script> or style attribute does nothing. The nonce is used only where a library
# inserts <style> elements itself (Redoc); Swagger UI and Redoc draw SVG icons from data: URLs
# and Redoc searches in a blob: worker.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# A participant's journey can span days; the session only carries an id, never answers.
SESSION_COOKIE_AGE = 60 * 60 * 24 * 30

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Invitation tokens never reach a log: "Not Found: /i/<token>/" and runserver's request
    # lines are redacted at their loggers (gunicorn's access log: the logger class in
    # surveys.journey.tokens).
    "filters": {"invitation_tokens": {"()": "surveys.journey.tokens.RedactInvitationTokens"}},
    "loggers": {
        "django.request": {"filters": ["invitation_tokens"]},
        "django.server": {"filters": ["invitation_tokens"], "handlers": ["console"]},
        # runserver's request lines under daphne (the development server of the ASGI app).
        "django.channels.server": {"filters": ["invitation_tokens"]},
    },
}
