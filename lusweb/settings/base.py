"""Settings shared by every environment; values come from ``LUSWEB_*`` environment variables."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from lusweb.settings.database import database_settings
from lusweb.settings.env import (
    env_ae_title,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_site_url,
    env_str,
)
from lusweb.settings.security import API_RATES, lockout_parameters, throttle_rate

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)
# Overridden by local/test; production refuses to start without LUSWEB_SECRET_KEY.
SECRET_KEY = env_str("SECRET_KEY", "") or ""
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "patients",
    "scoring",
    "axes",  # sign-in lockout (the "Sign-in lockout" block below)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "lusweb.headers.ContentSecurityPolicyMiddleware",  # the "Security headers" block below
    "lusweb.headers.NoStoreMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "patients.audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "lusweb.signin.LockoutMiddleware",  # last: answers a sign-in that django-axes refused
]

ROOT_URLCONF = "lusweb.urls"
WSGI_APPLICATION = "lusweb.wsgi.application"
ASGI_APPLICATION = "lusweb.asgi.application"

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
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lusweb.sqlite3'}") or ""
# PostgreSQL: psycopg's pool, bounded per process (LUSWEB_DB_POOL_*; lusweb/settings/database.py).
DATABASES = {"default": database_settings(DATABASE_URL, base_dir=BASE_DIR, pool_default=True)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Database sessions (Django's table and format), read with one hand-written statement.
SESSION_ENGINE = "lusweb.sessions"
# Invitations (a set-password link for a new account) and password resets. The console backend
# prints the message in the server's log: the demo needs no mail server. Production sets SMTP.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend") or ""
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "lusweb@localhost") or "lusweb@localhost"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
# Where the site is, for absolute links in e-mails sent outside a request (alerts); else the
# first CSRF_TRUSTED_ORIGINS entry, else the e-mail carries the page's path only.
SITE_URL = env_site_url("SITE_URL")
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_HOURS", 72, minimum=1) * 3600
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC") or "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "lusweb.staticfinders.PlotlyFinder",  # plotly.js from the installed package, no CDN
]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")) or "")
#: Served static files (production): collectstatic writes hashed names, which WhiteNoise serves
#: with ``max-age`` of 10 years and ``immutable``, and gzip copies (brotli too once the ``brotli``
#: package is installed) that it answers to clients accepting them: the 4.8 MB plotly bundle goes
#: out as 1.47 MB. Local settings keep Django's plain storage, so a laptop, ``runserver`` and the
#: benchmarks with DEBUG off need no collectstatic.
SERVED_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "lusweb.staticstorage.ServedStaticStorage"},  # lusweb/staticstorage.py
}
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")) or "")

# Site models (weights trained on a study's signed readings): every worker and web process reads
# them, so they live with the media files by default (one shared volume). The pure scoring core
# finds them by version through the same variable (scoring.core.inference.scorer.site_models_dir).
SITE_MODELS_DIR = Path(env_str("SITE_MODELS_DIR", str(MEDIA_ROOT / "models")) or MEDIA_ROOT / "models")
os.environ.setdefault("LUSWEB_SITE_MODELS_DIR", str(SITE_MODELS_DIR))  # scoring.engine.load_scorer(version) here too
# A site training (features, 60 fits of cross-validation, the final fit) may run longer than a
# scoring job: its own hard limit (seconds).
SITE_TRAINING_TIME_LIMIT = env_int("SITE_TRAINING_TIME_LIMIT", 3600, minimum=60)

MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 200, minimum=1)
# Uploads above this size stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# LUSWeb's own temporary folder: uploads being received (Django's temporary upload files) and the
# worker's local copies of stored uploads. A process that dies leaves its files here; the web
# server and the workers remove the stale ones when they start (``patients.imaging.tempfiles``).
TEMP_DIR = Path(env_str("TEMP_DIR", str(VAR_DIR / "tmp")) or VAR_DIR / "tmp")
FILE_UPLOAD_TEMP_DIR = str(TEMP_DIR)
# The request body may carry a clip of MAX_UPLOAD_MB plus form overhead; the ingest service
# gives the clear "file too large" error, so Django's own cap sits a little above it.
DATA_UPLOAD_MAX_MEMORY_SIZE = (MAX_UPLOAD_MB + 1) * 1024 * 1024

# Budgets of one decoded clip (patients.imaging.core.reader.Budget, built by
# patients.imaging.budget.clip_budget): checked from the file's header before decoding and again
# frame by frame while decoding. MAX_UPLOAD_MB bounds only the bytes sent: 60 kB of H.264 can
# hold 300 black 4K frames (2.4 GB decoded).
MAX_FRAMES = env_int("MAX_FRAMES", 2000, minimum=1)  # 80 s at 25 fps; the longest POCUS clip has 495
# A cine with fewer frames than this (but more than one) is accepted with a visible warning: a few
# frames cover little of a breathing cycle (B-lines come and go with it).
SHORT_CLIP_FRAMES = env_int("SHORT_CLIP_FRAMES", 10, minimum=2)
# Samples of one decoded frame, width x height x samples per pixel: a Full HD colour frame.
MAX_PIXELS_PER_FRAME = env_int("MAX_PIXELS_PER_FRAME", 1920 * 1080 * 3, minimum=1)
# Decoded grey uint8 frames of one clip, in MB. The process that ingests a clip holds about three
# times it: the decoded frames, their redacted copy, and the stored copy's encoded frames and
# file. Measured (tests/patients/imaging/test_ingest_budget.py, a phantom clip filling the budget,
# redacted and re-encoded): 941 MB peak at 248 MB decoded, 1,600 MB at 496 MB. So 256 MB keeps
# ingest well under the 1.5 GB a web or worker process may use, where 512 MB would not, and it is
# still twice the largest real clip (POCUS, 495 frames: 118 MB; a COVID-BLUES clip: 12 MB).
MAX_DECODED_MB = env_int("MAX_DECODED_MB", 256, minimum=1)

REDIS_URL = env_str("REDIS_URL", None)
DEVICE = env_choice("DEVICE", "auto", ("auto", "cpu", "cuda"))
# float16 for the scorer's feature passes on CUDA (never on the CPU): off by default; frame / clip
# probabilities move by at most scoring.core.device.HALF_PRECISION_*_TOLERANCE (README).
HALF_PRECISION = env_bool("HALF_PRECISION", False)
# Images per forward pass of the backbone; 0: 16 on the CPU (cache-sized), 64 on CUDA.
DEVICE_BATCH = env_int("DEVICE_BATCH", 0, minimum=0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "lusweb.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LUSWeb API",
    "DESCRIPTION": "Longitudinal lung-ultrasound monitoring: studies, patients, exams, clips, scores.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: Redis when configured, otherwise a filesystem broker that needs no server so the
# demo runs on a bare laptop.
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Exchange tables (kombu's default is ./control, i.e. wherever a process was started).
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_EAGER", False)
# Hard time limits of the workers' tasks (seconds): scoring and the other tasks, and the ingest of
# one clip (decode, de-identify, frame cache; the decode budgets keep it far below this).
TASK_TIME_LIMIT = env_int("TASK_TIME_LIMIT", 1200, minimum=60)
INGEST_TIME_LIMIT = env_int("INGEST_TIME_LIMIT", 300, minimum=30)
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = TASK_TIME_LIMIT * 3 // 4
# Redis hands an unacknowledged message (a killed worker's) to another worker after this long: just
# past the longest a live worker may still be running it, so it is never longer than needed.
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = env_int(
    "BROKER_VISIBILITY_TIMEOUT", max(TASK_TIME_LIMIT, INGEST_TIME_LIMIT) + 60, minimum=5)
if REDIS_URL:
    # A broker that is down refuses or times out quickly instead of holding a request: connect
    # within 3 s, and a synchronous command (a publish) never waits more than 10 s on a dead link.
    CELERY_BROKER_TRANSPORT_OPTIONS.update(socket_connect_timeout=3, socket_timeout=10)
    # Interactive work first: a worker takes from its queues in the order given (``-Q``,
    # lusweb.celery.WORKER_QUEUES), not round robin.
    CELERY_BROKER_TRANSPORT_OPTIONS["queue_order_strategy"] = "priority"
# Publishing a task retries briefly, then gives up: the row stays pending, undispatched, and the
# workers' recovery loops send it again once the broker is back (``lusweb.broker``).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25,
                                    "interval_max": 0.5}

# Scoring jobs: a worker holds a lease it renews while working; a dead worker's lease expires
# and the job is claimed again.
SCORING_ON_UPLOAD = env_bool("SCORING_ON_UPLOAD", True)
# A worker runs at this niceness (0-19): on a host it shares with the web server, the pages and
# /healthz/ take the CPU first and the scoring and ingest work yields (lusweb.celery).
WORKER_NICE = env_int("WORKER_NICE", 10, minimum=0, maximum=19)
# A clinician reading or an adjudication refreshes the exam's severity from the score of record.
SEVERITY_ON_READING = env_bool("SEVERITY_ON_READING", True)
SCORING_LEASE_SECONDS = env_int("SCORING_LEASE_SECONDS", 120, minimum=5)
SCORING_RECOVERY_SECONDS = env_int("SCORING_RECOVERY_SECONDS", 10, minimum=1)
SCORING_REDISPATCH_SECONDS = env_int("SCORING_REDISPATCH_SECONDS", 300, minimum=1)
SCORING_BATCH_FRAMES = env_int("SCORING_BATCH_FRAMES", 600, minimum=1)
SCORING_DEBOUNCE_SECONDS = env_int("SCORING_DEBOUNCE_SECONDS", 2, minimum=0)
# Each stored clip is prepared for the study's scorer by a task on the ingest queue, from its frame
# cache, once its ingest check has passed (scoring.prepared): the exam's job then runs only the CNN.
SCORING_PREPARE_ON_INGEST = env_bool("SCORING_PREPARE_ON_INGEST", True)
# Page reads (GET, HEAD) one web process runs at once; the others wait their turn, at most
# WEB_QUEUE_SECONDS (lusweb.admission). 0: no limit.
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 3, minimum=0)
WEB_QUEUE_SECONDS = env_int("WEB_QUEUE_SECONDS", 5, minimum=1)
# Answers on one kept-alive connection before the server closes it, so that the clients' connections
# keep spreading evenly over the web processes (lusweb.admission.KeepAliveLimit). 0: never closed.
WEB_KEEPALIVE_REQUESTS = env_int("WEB_KEEPALIVE_REQUESTS", 100, minimum=0)
# Dashboard data kept per web process while none of the patient's rows changes (PostgreSQL only;
# patients.dashboards.pagecache): entries held per process (0.2-0.4 MB each for a patient with 20
# exams), 0 turns the cache off.
PAGE_CACHE_ENTRIES = env_int("PAGE_CACHE_ENTRIES", 128, minimum=0)
# Ingest in the worker: each worker re-sends the uploads whose message never left (broker down)
# every INGEST_RECOVERY_SECONDS, and those not started INGEST_REDISPATCH_SECONDS after they were sent.
INGEST_RECOVERY_SECONDS = env_int("INGEST_RECOVERY_SECONDS", 10, minimum=1)
INGEST_REDISPATCH_SECONDS = env_int("INGEST_REDISPATCH_SECONDS", 60, minimum=1)
# A processing clip whose worker died is taken up again this long after it was claimed (past the
# ingest time limit, so a live worker is never overtaken); after INGEST_MAX_ATTEMPTS it fails.
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 3, minimum=1)
# Temporary files older than this are left over from a dead process (longer than any task runs;
# a file being received is written to continually, so it is never this old).
TEMP_STALE_SECONDS = env_int("TEMP_STALE_SECONDS", max(TASK_TIME_LIMIT, INGEST_TIME_LIMIT) + 60, minimum=60)
# Severity uses the latest clinical record at most this many days before the exam.
SEVERITY_CLINICAL_WINDOW_DAYS = env_int("SEVERITY_CLINICAL_WINDOW_DAYS", 14, minimum=0)

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # A 403 (PermissionDenied) or 404 raised in a view is one line, not a traceback (lusweb.logs).
    "filters": {"client_errors": {"()": "lusweb.logs.ClientErrorsInOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["client_errors"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO") or "INFO"},
}

# --- Sign-in lockout and API throttles (issue 15) -------------------------------------------------
# django-axes counts failed sign-ins (login form, admin, token API) in the database, which every
# server process shares, per client address and per username (LUSWEB_LOGIN_LOCKOUT_BY), and refuses
# sign-ins for LUSWEB_LOGIN_COOLOFF_MINUTES after LUSWEB_LOGIN_FAILURE_LIMIT failures.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = lockout_parameters(["ip", "username"])
# A success does not clear the counts: signing in to one's own account between guesses at another
# would otherwise reset the address's count. Refused attempts during a lockout do not extend it.
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "patients.audit.services.client_ip"  # REMOTE_ADDR, as the audit trail
AXES_LOCKOUT_CALLABLE = "lusweb.signin.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the audit trail already
# lusweb.signin.LockoutMiddleware stands in for axes.middleware.AxesMiddleware (see its docstring).
SILENCED_SYSTEM_CHECKS = ["axes.W002"]

# DRF throttles: per address without a user, per user with one, and a stricter rate on the token
# endpoint. Counters in Redis when there is one, so every process enforces the same limit.
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["lusweb.throttling.AnonThrottle", "lusweb.throttling.UserThrottle"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    scope: throttle_rate(f"API_RATE_{scope.upper()}", rate) for scope, rate in API_RATES.items()
}
REST_FRAMEWORK["NUM_PROXIES"] = 0  # the client is REMOTE_ADDR, never a forgeable X-Forwarded-For
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "lusweb",
         # An unreachable Redis fails the count within a second instead of holding the request.
         "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}
        if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
    ),
}

# --- Security headers (issue 15) ------------------------------------------------------------------
# No inline script anywhere (pages load static/js files; data travels in json_script blocks).
# style-src-attr: plotly.js draws some SVG parts with style attributes (setAttribute), and the
# templates colour legend swatches and bars the same way; <style> blocks stay forbidden, and
# plotly.js's own rules go into the (empty) static sheet css/plotly-rules.css by the CSSOM.
CONTENT_SECURITY_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],  # plus the site's ws:// and wss:// origin (lusweb.headers)
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", False)
CSP_REPORT_URI = env_str("CSP_REPORT_URI", "") or ""

# --- DICOM receiver (issue 18: ``python manage.py lus_dicom_scp``) ---------------------------------
# Its AE title and port; senders are let in by each study's allow-list of calling AE titles
# (Study.dicom_calling_aets). One association is one thread: 12 machines sending at once need 12.
DICOM_AE_TITLE = env_ae_title("DICOM_AE_TITLE", "LUSWEB")
DICOM_PORT = env_int("DICOM_PORT", 11112, minimum=1, maximum=65535)
DICOM_MAX_ASSOCIATIONS = env_int("DICOM_MAX_ASSOCIATIONS", 16, minimum=1)
