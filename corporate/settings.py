"""Settings for the corporate AI workspace.

Everything that differs between a laptop and a server comes from the
environment (see .env.example). The defaults run a fresh clone: SQLite under
var/, local-memory cache, the offline model provider. ENVIRONMENT=production
turns on the checks a server needs and refuses to start without a secret.
"""

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from corporate.env import database_from_url, env_bool, env_int, env_list, env_oidc_providers, env_str, redis_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

ENVIRONMENT = env_str("ENVIRONMENT", "development").strip().lower()
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured(f"ENVIRONMENT must be development or production, not {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"
TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")

DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when ENVIRONMENT=production")


def _secret_key():
    key = env_str("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when ENVIRONMENT=production")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when ENVIRONMENT=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "corporate",
    "audit",
    "workspaces",
    "sso",
    "twofactor",
    "documents",
    "assistants",
    "llmgateway",
    "people",
]

MIDDLEWARE = [
    # Queries and database time per request: Server-Timing, the access log, the metrics.
    "corporate.observability.middleware.RequestStatsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A database outage (or a full connection pool) answers a 503 page or JSON error, not a 500.
    "corporate.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Under /api/, an address without its trailing slash is served as the slashed one (no 301 for clients).
    "corporate.api_slash.ApiAppendSlashMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): the session passed the second step (django-otp).
    "django_otp.middleware.OTPMiddleware",
    # Sends a signed-in user who must enrol a second factor to the enrolment page.
    "twofactor.middleware.RequireTwoFactorMiddleware",
    # django-allauth's request context, for the OpenID Connect sign-in (sso/).
    "allauth.account.middleware.AccountMiddleware",
    "corporate.middleware.RejectNulInQueryMiddleware",
    # Model changes recorded in the audit log know the request: who, and from which address.
    "audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # The sign-in and sign-out forms may lead to an identity provider (form-action).
    "sso.middleware.ProviderFormActionMiddleware",
    # AxesMiddleware turns a locked-out sign-in into the styled lockout page.
    "axes.middleware.AxesMiddleware",
    # A page address visited with a method it does not take answers the styled 405 page, not a blank one.
    "corporate.middleware.MethodNotAllowedPageMiddleware",
]

# The OpenAI-compatible API (/v1/) is served by programs with a bearer key and
# runs behind this shorter list (corporate/handlers.py): host validation, the
# HTTPS redirect and security headers, the request checks every path needs, and
# the 503 answer while the database does not answer.
V1_MIDDLEWARE = [
    # Queries and database time per request: Server-Timing, the access log, the metrics.
    "corporate.observability.middleware.RequestStatsMiddleware",
    # SecurityMiddleware, DatabaseUnavailableMiddleware, ValidateHostMiddleware and
    # RejectNulInQueryMiddleware in one layer (a layer of calls less each on every cache hit).
    "corporate.middleware.ApiGuardMiddleware",
]

ROOT_URLCONF = "corporate.urls"
WSGI_APPLICATION = "corporate.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "corporate.context_processors.site",
                "corporate.navigation.navigation",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL names another.
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": database_from_url("DATABASE_URL", DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "corporate.backends.sqlite3",
            "NAME": VAR_DIR / "corporate.sqlite3",
            "OPTIONS": {
                # WAL lets the web server and the task worker read while one writes.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file, not memory, so live-server tests see the same data from
            # every thread; one per process so parallel runs do not collide.
            "TEST": {"NAME": VAR_DIR / f"test-{os.getpid()}.sqlite3"},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # sqlite-vec loaded into every connection (vector search), see corporate/backends/sqlite3.
    DATABASES["default"]["ENGINE"] = "corporate.backends.sqlite3"
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's PostgreSQL backend plus, in gevent workers, a pool of at most
    # DB_POOL_SIZE connections per worker process (corporate/backends/postgresql).
    # CONN_MAX_AGE is how long one connection stays open: kept per thread in the
    # task worker and commands, reused from the pool by gevent workers. Checked
    # with SELECT 1 before reuse. Budget: web workers x DB_POOL_SIZE + task
    # worker + admin sessions < PostgreSQL's max_connections.
    DATABASES["default"]["ENGINE"] = "corporate.backends.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["POOL_SIZE"] = env_int("DB_POOL_SIZE", 10, minimum=1)
    # Seconds a request waits for a free pooled connection before failing.
    DATABASES["default"]["POOL_TIMEOUT"] = env_int("DB_POOL_TIMEOUT", 10, minimum=1)
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5, minimum=1)
# Seconds a gevent worker waits for the database's answer to a query before giving up with
# OperationalError (503): a database that stops answering without closing its connections
# (paused, frozen, cut off) holds no request longer (corporate/backends/postgresql/green.py).
DB_QUERY_TIMEOUT = env_int("DB_QUERY_TIMEOUT", 30, minimum=1)
# /health's own bound on the database's answer, shorter than a load balancer's probe timeout.
HEALTH_DATABASE_SECONDS = env_int("HEALTH_DATABASE_SECONDS", 3, minimum=1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every query at least this slow is logged once, with its origin and its SQL
# redacted (corporate/observability/queries.py); 0 logs every query.
DB_SLOW_QUERY_MS = env_int("DB_SLOW_QUERY_MS", 200, minimum=0)

# Prometheus metrics at GET /metrics for `Authorization: Bearer <METRICS_TOKEN>`;
# unset turns metrics off (nothing counted, /metrics is 404). Under gunicorn,
# PROMETHEUS_MULTIPROC_DIR (set by the start scripts) collects every process's.
METRICS_TOKEN = env_str("METRICS_TOKEN", "").strip()
if METRICS_TOKEN and (len(METRICS_TOKEN) < 16 or any(c.isspace() or not c.isprintable() for c in METRICS_TOKEN)):
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters without spaces, or unset")
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR and not (
    os.path.isdir(PROMETHEUS_MULTIPROC_DIR) and os.access(PROMETHEUS_MULTIPROC_DIR, os.W_OK)
):
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR must be a writable folder: {PROMETHEUS_MULTIPROC_DIR!r}")

# Cache: local memory unless REDIS_URL is set. Every key carries the installation
# id of the database (corporate.installation), so databases sharing a Redis
# never read each other's entries.
REDIS_URL = env_str("REDIS_URL", "")
REDIS_SOCKET_TIMEOUT = float(env_int("REDIS_SOCKET_TIMEOUT_MS", 250, minimum=10)) / 1000
# After a Redis connection error or timeout, every use of Redis in the process
# answers "unavailable" at once for this long (corporate/redis_circuit.py).
# LLM_REDIS_RETRY_SECONDS is the old name of the variable.
REDIS_RETRY_SECONDS = env_int("REDIS_RETRY_SECONDS", env_int("LLM_REDIS_RETRY_SECONDS", 5, minimum=1), minimum=1)
LLM_REDIS_RETRY_INTERVAL = REDIS_RETRY_SECONDS  # the old name of the setting
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "corporate")
if REDIS_URL:
    from corporate.redis_circuit import cache_settings

    CACHES = {"default": cache_settings(redis_url("REDIS_URL", REDIS_URL), REDIS_SOCKET_TIMEOUT, CACHE_KEY_PREFIX)}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "corporate",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "KEY_FUNCTION": "corporate.installation.make_key",
        }
    }
# The circuit logs one warning per outage interval; no traceback per ignored operation.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False

# Task workers' heartbeats (corporate.workers), read by /health: a cache every
# process sees - the Redis above, else files under var/ (local memory is per process).
if REDIS_URL or TESTING:
    CACHES["workers"] = dict(CACHES["default"])
else:
    CACHES["workers"] = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": VAR_DIR / "worker-heartbeats",
        "KEY_PREFIX": CACHE_KEY_PREFIX,
    }

# Page data every page shows (dashboard panels, workspace lists with counts) is
# cached this long at most; a write to the rows it comes from replaces it at once
# (corporate/pagecache.py). Needs Redis (REDIS_URL); 0 turns it off.
PAGE_CACHE_SECONDS = env_int("PAGE_CACHE_SECONDS", 300, minimum=0)

# Sessions live in the database; the cache only speeds them up.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 14, minimum=60)

AUTH_USER_MODEL = "corporate.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 60 * 60 * 24, minimum=60)
if TESTING:
    # Fast hashing keeps the suite quick; production keeps Django's default.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Proxies in front of the app that each append the address they saw to
# X-Forwarded-For (1: nginx, deploy/nginx.conf). corporate.auth.client_address
# takes the entry they wrote; 0 trusts no header and counts the socket peer.
PROXY_COUNT = env_int("PROXY_COUNT", 1 if PRODUCTION else 0, minimum=0)

# Failed sign-ins, counted within LOGIN_COOLOFF_MINUTES of the last one
# (corporate.auth.axes_failure_limit): one account from one address is paused
# after LOGIN_FAILURE_LIMIT; an account from any addresses after
# LOGIN_ACCOUNT_FAILURE_LIMIT; one address for any accounts after
# LOGIN_ADDRESS_FAILURE_LIMIT. A pause lasts LOGIN_COOLOFF_MINUTES.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("LOGIN_ACCOUNT_FAILURE_LIMIT", 20, minimum=1)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 50, minimum=1)
AXES_FAILURE_LIMIT = "corporate.auth.axes_failure_limit"
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
# Sign-in is case-insensitive, so the per-account count must be too.
AXES_USERNAME_CALLABLE = "corporate.auth.axes_username"
AXES_CLIENT_IP_CALLABLE = "corporate.auth.client_address"
AXES_LOCKOUT_CALLABLE = "corporate.views.locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# Password-reset requests per hour that send mail: per account (more get the
# same answer and no mail) and per client address (more get "try later").
PASSWORD_RESET_ACCOUNT_LIMIT = env_int("PASSWORD_RESET_ACCOUNT_LIMIT", 5, minimum=1)
PASSWORD_RESET_ADDRESS_LIMIT = env_int("PASSWORD_RESET_ADDRESS_LIMIT", 20, minimum=1)

# Single sign-on with OpenID Connect (sso/): providers come from the environment
# (OIDC_PROVIDERS names them; OIDC_<NAME>_ISSUER, _CLIENT_ID, _CLIENT_SECRET,
# _DISPLAY_NAME, _SCOPES, _GROUPS_CLAIM, _GROUP_MAP, _ALLOWED_DOMAINS for each)
# and from the admin (sso.IdentityProvider). django-allauth speaks the protocol.
OIDC_PROVIDERS = env_oidc_providers()
# Create an account on a first SSO sign-in (else only existing accounts may sign in),
# for these email domains only when the list is not empty.
OIDC_AUTO_CREATE = env_bool("OIDC_AUTO_CREATE", False)
OIDC_ALLOWED_DOMAINS = [domain.lower() for domain in env_list("OIDC_ALLOWED_DOMAINS", [])]
# Turn off the local password of an account when it signs in through SSO.
OIDC_DISABLE_LOCAL_PASSWORDS = env_bool("OIDC_DISABLE_LOCAL_PASSWORDS", False)
# Seconds an identity provider gets to answer (discovery, token, keys, user info).
SOCIALACCOUNT_REQUESTS_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", 5, minimum=1)
SOCIALACCOUNT_ADAPTER = "sso.adapter.SocialAccountAdapter"
SOCIALACCOUNT_PROVIDERS = {}
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_STORE_TOKENS = False
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"

# Two-factor authentication (twofactor/): TOTP with recovery codes for local
# accounts. TWO_FACTOR_REQUIRED: "none", "staff" or "all"; staff may make it
# stricter in the admin or with `manage.py require_2fa`.
TWO_FACTOR_REQUIRED = env_str("TWO_FACTOR_REQUIRED", "none").strip().lower()
if TWO_FACTOR_REQUIRED not in {"none", "staff", "all"}:
    raise ImproperlyConfigured(f"TWO_FACTOR_REQUIRED must be none, staff or all, not {TWO_FACTOR_REQUIRED!r}")
# The name authenticator apps show beside the account (default: SITE_NAME).
OTP_TOTP_ISSUER = env_str("TWO_FACTOR_ISSUER", "") or env_str("SITE_NAME", "Corporate AI")
# Wrong codes are counted by the sign-in lockout (axes), like passwords; not by django-otp's own delays.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
# A second step must be finished this many seconds after the password was accepted.
TWO_FACTOR_STEP_SECONDS = env_int("TWO_FACTOR_STEP_SECONDS", 300, minimum=30)
# Audit log: events older than this many days are deleted by `manage.py prune_audit`.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365, minimum=1)

# Self sign-up is off unless an operator turns it on.
SIGNUP_ENABLED = env_bool("SIGNUP_ENABLED", False)

# Mail: printed to the console unless SMTP is configured.
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Corporate AI <noreply@localhost>")
# The site's public address for links (API base URL, mails sent outside a request); empty: the
# address of the request itself (behind the proxy: its X-Forwarded-Proto and -Host).
SITE_URL = env_str("SITE_URL", "").rstrip("/")
SITE_NAME = env_str("SITE_NAME", "Corporate AI")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Uploads: the limit is enforced by nginx too (client_max_body_size).
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_MB", 50, minimum=1) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("UPLOAD_MAX_FILES", 20, minimum=1)

# Documents: where uploaded files are kept, and the limits of reading them.
# S3-compatible storage when DOCUMENTS_S3_BUCKET is set (needs `pip install boto3`).
if env_str("DOCUMENTS_S3_BUCKET", ""):
    STORAGES["documents"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("DOCUMENTS_S3_BUCKET"),
            "endpoint_url": env_str("DOCUMENTS_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("DOCUMENTS_S3_REGION", "") or None,
            "access_key": env_str("DOCUMENTS_S3_ACCESS_KEY", "") or None,
            "secret_key": env_str("DOCUMENTS_S3_SECRET_KEY", "") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
# Behind deploy/nginx.conf: downloads are checked here and sent by nginx (X-Accel-Redirect).
FILES_VIA_NGINX = env_bool("FILES_VIA_NGINX", False)
DOCUMENTS_MAX_PAGES = env_int("DOCUMENTS_MAX_PAGES", 2000, minimum=1)
DOCUMENTS_MAX_CHARS = env_int("DOCUMENTS_MAX_CHARS", 20_000_000, minimum=1000)
DOCUMENTS_MAX_UNZIPPED_MB = env_int("DOCUMENTS_MAX_UNZIPPED_MB", 200, minimum=1)
DOCUMENTS_PARSE_TIMEOUT = env_int("DOCUMENTS_PARSE_TIMEOUT", 300, minimum=1)
DOCUMENTS_PARSE_MEMORY_MB = env_int("DOCUMENTS_PARSE_MEMORY_MB", 1024, minimum=128)
DOCUMENTS_CHUNK_SIZE = env_int("DOCUMENTS_CHUNK_SIZE", 1200, minimum=200)
DOCUMENTS_CHUNK_OVERLAP = env_int("DOCUMENTS_CHUNK_OVERLAP", 200, minimum=0)
# A document whose worker sent no heartbeat for this long is retried, at most
# DOCUMENTS_MAX_ATTEMPTS times in all, then marked failed.
DOCUMENTS_STALE_SECONDS = env_int("DOCUMENTS_STALE_SECONDS", 60, minimum=5)
DOCUMENTS_MAX_ATTEMPTS = env_int("DOCUMENTS_MAX_ATTEMPTS", 3, minimum=1)

# Background tasks: the database queue, worked by `manage.py task_worker`
# (django-tasks-db's db_worker, reconnecting after a database outage);
# tests run tasks immediately.
TASKS = {
    "default": {
        "BACKEND": "django_tasks.backends.immediate.ImmediateBackend" if TESTING else "django_tasks_db.DatabaseBackend",
    }
}

# A task worker writes a heartbeat this often; /health calls the workers stale
# after three missed beats. After a database error a worker retries, doubling
# its pause from 0.5 s up to TASK_WORKER_RETRY_MAX_SECONDS.
TASK_WORKER_HEARTBEAT_SECONDS = env_int("TASK_WORKER_HEARTBEAT_SECONDS", 5, minimum=1)
TASK_WORKER_RETRY_MAX_SECONDS = env_int("TASK_WORKER_RETRY_MAX_SECONDS", 5, minimum=1)

REST_FRAMEWORK = {
    # Token first: an unauthenticated API call gets 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # Workspace API keys ("Authorization: Bearer gw_..."), checked through the cache.
        "llmgateway.auth.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's three, with a JSON parser that answers a body nested too deeply with a 400.
    "DEFAULT_PARSER_CLASSES": [
        "corporate.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "corporate.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Corporate AI workspace API",
    "DESCRIPTION": "Workspaces, documents, assistants and the model gateway.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "WorkspaceRoleEnum": "workspaces.roles.Role.choices",
        "MessageRoleEnum": "assistants.models.Role.choices",
        "MessageStatusEnum": "assistants.models.MessageStatus.choices",
        "DocumentStatusEnum": "documents.models.Status.choices",
    },
}

# Security headers. Behind nginx in production the proxy terminates TLS.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "corporate.views.csrf_failure"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Probes and scrapers on the host reach gunicorn directly over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

if DEBUG and not TESTING:
    try:
        import debug_toolbar  # noqa: F401
    except ImportError:
        pass
    else:
        INSTALLED_APPS.append("debug_toolbar")
        MIDDLEWARE.insert(0, "debug_toolbar.middleware.DebugToolbarMiddleware")
        INTERNAL_IPS = ["127.0.0.1"]

# Model gateway (llmgateway): completion cache, coalescing, upstream calls.
# Upstream provider keys are encrypted at rest with LLM_KEY_ENCRYPTION_KEY (a
# Fernet key; `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`),
# or with a key derived from SECRET_KEY when it is not set.
LLM_KEY_ENCRYPTION_KEY = env_str("LLM_KEY_ENCRYPTION_KEY", "")
LLM_DEFAULT_MODEL = env_str("LLM_DEFAULT_MODEL", "offline")
# The model that turns passages and questions into vectors for search by meaning: a configured
# OpenAI-compatible model's name, or empty for the built-in local model (see llmgateway/embeddings.py).
LLM_EMBEDDING_MODEL = env_str("LLM_EMBEDDING_MODEL", "")
LLM_CACHE_TTL = env_int("LLM_CACHE_TTL", 60 * 60, minimum=1)
LLM_CACHE_MAX_TTL = env_int("LLM_CACHE_MAX_TTL", 7 * 24 * 60 * 60, minimum=1)
# How long an identical request waits for the one already in flight before making its own call
# (never past its own deadline).
LLM_COALESCE_WAIT = env_int("LLM_COALESCE_WAIT_SECONDS", 30, minimum=0)
# Every upstream call is over by this many seconds, all retries and fallbacks included (a model may
# set its own): below the web server's timeout (WEB_TIMEOUT, 150), so the client hears the gateway's
# 504 rather than nginx's. A stream that sends nothing for LLM_STREAM_IDLE_SECONDS fails.
LLM_DEADLINE_SECONDS = env_int("LLM_DEADLINE_SECONDS", 120, minimum=1)
LLM_STREAM_IDLE_SECONDS = env_int("LLM_STREAM_IDLE_SECONDS", 30, minimum=1)
# Models on loopback and private addresses (self-hosted); link-local and cloud metadata addresses
# are always refused.
LLM_ALLOW_PRIVATE_UPSTREAMS = env_bool("LLM_ALLOW_PRIVATE_UPSTREAMS", True)
# The most one request may send upstream: characters of message content, and messages.
LLM_MAX_INPUT_CHARS = env_int("LLM_MAX_INPUT_CHARS", 200_000, minimum=1)
LLM_MAX_MESSAGES = env_int("LLM_MAX_MESSAGES", 500, minimum=1)
# The most an upstream's whole answer may be, as received and once decompressed (bytes).
LLM_MAX_RESPONSE_BYTES = env_int("LLM_MAX_RESPONSE_BYTES", 16 * 1024 * 1024, minimum=1024)
# Circuit breaker: this many failed calls in a row skip a model for the cool-down.
LLM_BREAKER_FAILURES = env_int("LLM_BREAKER_FAILURES", 5, minimum=1)
LLM_BREAKER_COOLDOWN = env_int("LLM_BREAKER_COOLDOWN_SECONDS", 30, minimum=1)

# Usage records, limits and budgets (llmgateway.metering). LLM_USAGE_HOOK: the gateway's usage hook.
LLM_USAGE_HOOK = env_str("LLM_USAGE_HOOK", "llmgateway.metering.Meter")
# Usage records and hourly totals older than this many days are deleted by `manage.py prune_usage`;
# the daily totals stay.
USAGE_RETENTION_DAYS = env_int("USAGE_RETENTION_DAYS", 90, minimum=32)
# How often the task worker writes buffered usage records to the database.
USAGE_FLUSH_SECONDS = env_int("USAGE_FLUSH_SECONDS", 2, minimum=1)
# Answer tokens reserved against token limits and budgets when a request sets no max_tokens.
USAGE_ESTIMATE_MAX_TOKENS = env_int("USAGE_ESTIMATE_MAX_TOKENS", 1024, minimum=1)
# Cache hits count towards request limits; with this on, also towards token limits and budgets.
USAGE_HITS_COUNT_TOWARDS_SPEND = env_bool("USAGE_HITS_COUNT_TOWARDS_SPEND", False)
# When Redis does not answer, a request under limits is admitted unchecked ("admit", logged and counted in
# corporate_limits_unchecked_total) or refused with a 503 and Retry-After ("refuse": no money spent unseen).
USAGE_LIMITS_WITHOUT_STORE = env_str("USAGE_LIMITS_WITHOUT_STORE", "admit").strip().lower()
if USAGE_LIMITS_WITHOUT_STORE not in {"admit", "refuse"}:
    raise ImproperlyConfigured(
        f"USAGE_LIMITS_WITHOUT_STORE must be admit or refuse, not {USAGE_LIMITS_WITHOUT_STORE!r}"
    )

# Assistants: hosts that links in answers may point to (besides this site).
# Images in answers are never shown, so an answer cannot leak through an image URL.
ANSWER_LINK_HOSTS = env_list("ANSWER_LINK_HOSTS", [])

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "corporate.slow_queries": {"level": "INFO"},
        "axes": {"level": "WARNING"},
        # httpx logs every upstream request at INFO; the gateway logs what matters.
        "httpx": {"level": "WARNING"},
    },
}
