"""One settings object for the app, the CLI and the migrations.

Read from the environment: ``DATABASE_URL`` and ``RENEWAL_*`` variables (and a
``.env`` file if present). Built once in the app factory or CLI and passed down.
"""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

API_LOGIN = "renewal_api"
"""The API's database login (migration 0014): not a superuser, owns nothing, inherits renewal_app's grants."""
DEFAULT_DATABASE_URL = f"postgresql://{API_LOGIN}@/renewal"
"""The local socket, the API's own login, database ``renewal`` (what ``make db`` creates)."""


def with_user(url: str, user: str | None, password: str | None = None) -> str:
    """The same database (URL or key=value conninfo) reached as ``user`` (None: the current OS user).

    Why one function: the owner URL (below), the API login of tests and benchmarks and the
    clusters of ``bench/`` all swap the login of a URL; any password it had goes with the old user.
    """
    if "://" in url:
        scheme, rest = url.split("://", 1)
        netloc, slash, tail = rest.partition("/")
        auth = "" if user is None else f"{user}:{password}@" if password else f"{user}@"
        return f"{scheme}://{auth}{netloc.rsplit('@', 1)[-1]}{slash}{tail}"
    info = conninfo_to_dict(url)
    info.pop("user", None)
    info.pop("password", None)
    if user is not None:
        info["user"] = user
    if password:
        info["password"] = password
    return make_conninfo("", **info)


def without_user(url: str) -> str:
    """The same database reached as the current OS user (the owner in a ``make db`` set-up)."""
    return with_user(url, None)


def user_of(url: str) -> str | None:
    """The login a URL names (None: the OS user)."""
    user = conninfo_to_dict(url).get("user")
    return str(user) if user else None


class Settings(BaseSettings):
    """Runtime configuration of the toolkit."""

    model_config = SettingsConfigDict(env_prefix="RENEWAL_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "RENEWAL_DATABASE_URL"),
    )
    owner_database_url: str | None = None
    """The data owner's login, for migrations, the CLI and bulk loads (``RENEWAL_OWNER_DATABASE_URL``).

    Unset: ``DATABASE_URL`` without its user when that user is the API login (so ``make db`` on a
    socket works as the OS user), else ``DATABASE_URL`` itself.
    """
    allow_superuser: bool = False
    """Let the API log in as a superuser (refused otherwise); it then warns in the log and /healthz."""
    host: str = "127.0.0.1"
    port: int = 8000
    pool_min_size: int = 2
    pool_max_size: int = 10
    pool_timeout_s: float = 5.0
    pool_reconnect_timeout_s: float = Field(default=2.0, gt=0)
    """How long one chain of reconnection attempts lasts (api/db.py); short so recovery is fast."""
    statement_timeout_ms: int = 30000
    default_limit: int = Field(default=100, ge=1)
    max_limit: int = Field(default=10000, ge=1)
    tile_cache_max_age_s: int = 60
    tianditu_key: str | None = None
    public_url: str | None = None
    """Base URL used in links when behind a proxy; None means derive from the request."""
    log_level: str = "info"
    workers: int = Field(default=0, ge=0)
    """Worker processes for ``renewal serve``; 0 means one per CPU core."""

    # Streaming replicas (api/routing.py)
    read_database_urls: str = ""
    """Comma-separated URLs of streaming replicas for reads; empty means every read goes to the primary."""
    replica_max_lag_s: float = Field(default=5.0, ge=0)
    """A replica further behind the primary than this serves no reads until it catches up."""
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest request body (uploads included); larger bodies get 413."""

    # Access control, audit and rate limiting (api/auth.py)
    db_role: str = "renewal_app"
    """Role every pooled connection switches to (SET ROLE); empty to stay the login role."""
    restricted_layers: str = ""
    """Comma-separated layer ids closed to anonymous readers, on top of the registry's anonymous_read."""
    public_layers: str = ""
    """Comma-separated layer ids opened to anonymous readers even if the registry closes them."""
    anon_rate_per_s: float = Field(default=50.0, ge=0)
    """Sustained requests per second per anonymous client (IP); 0 disables rate limiting."""
    anon_burst: int = Field(default=500, ge=1)
    """Requests an anonymous client may make in a burst before the rate applies."""
    auth_cache_ttl_s: float = Field(default=30.0, ge=0)
    """How long a verified API key is trusted without re-checking the database (revocation delay)."""
    jwt_issuer: str | None = None
    jwt_key: str | None = None
    """Key that verifies bearer JWTs (PEM public key, or shared secret for HS256); None disables JWTs."""
    jwt_algorithms: str = "RS256"
    jwt_audience: str | None = None

    export_concurrency: int = Field(default=2, ge=1)
    """Streamed file downloads (``items?f=gpkg``) running at once per worker; more wait their turn. Each holds a
    database connection of its own (outside the pool) and a temporary file while it is written."""

    # Reporting and review (layers/submissions.py, layers/attachments.py, api/sessions.py)
    review_required: bool = True
    """False turns review off: editors write layers with ``requires_review`` directly, as before."""
    storage_dir: str = "storage"
    """Directory of attachment files (photos, PDFs), addressed by SHA-256; created when missing."""
    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    """Largest attachment accepted (larger ones get 413)."""
    photo_max_distance_m: float = Field(default=500.0, ge=0)
    """A photo whose EXIF position is further than this from the feature is flagged to the reviewer."""
    session_ttl_s: int = Field(default=8 * 3600, ge=60)
    """How long a viewer sign-in (session cookie) lasts."""
    session_secure_cookie: bool = False
    """Mark the session cookie Secure (set true behind HTTPS)."""

    @property
    def owner_url(self) -> str:
        """Where migrations, the CLI and the owner's bulk loads connect (see ``owner_database_url``)."""
        if self.owner_database_url:
            return self.owner_database_url
        if user_of(self.database_url) == API_LOGIN:
            return without_user(self.database_url)
        return self.database_url

    @property
    def sqlalchemy_url(self) -> str:
        """The owner's URL for SQLAlchemy/alembic (migrations run as the owner), forcing psycopg 3."""
        url = self.owner_url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


def get_settings() -> Settings:
    """Build settings from the environment."""
    return Settings()
