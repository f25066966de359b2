"""Configuration: LIVECLASS_* environment variables over an optional TOML file over embedded defaults.

pydantic-settings does the parsing and validation, so a misconfiguration is reported once, clearly,
before anything starts (see `load_settings`).
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

SECRET_FILE_NAME = "secret_key"
# turn: or turns:, a host (name, IPv4 or [IPv6]), an optional port, an optional ?transport=udp|tcp (RFC 7065)
TURN_URL = re.compile(r"^turns?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(\?transport=(udp|tcp))?$")


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix."""


class IceServer(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIVECLASS_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Empty means: SQLite file `liveclass.db` in the data directory.
    database_url: str = ""
    # Empty means: read (or create on first start) `secret_key` in the data directory.
    secret_key: str = ""
    # Public base URL of the school's LiveClass (the web pages and the API); empty: derived from the request.
    public_url: str = ""
    # Several nodes (docs/operations.md, "Scale-out"): Redis holds placements, heartbeats and room states.
    # Empty: this process alone (embedded default).
    redis_url: str = ""
    redis_prefix: str = Field("liveclass", pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # keys and channels of this cluster
    node_id: str = Field("", max_length=64)  # empty: host:port
    # The base URL clients use for this node's Socket.IO (e.g. https://lop.truong.edu.vn/node/2);
    # empty: http://host:port with Redis, the public URL (or the request's) without.
    node_url: str = ""
    node_ttl_seconds: float = Field(10, ge=1, le=300)  # a node silent this long is dead; its rooms move
    drain_timeout_seconds: float = Field(30, gt=0, le=600)  # SIGTERM or a drain: rooms handed over within this
    # Recordings, handouts and lesson videos: a folder every node reaches (a network filesystem with
    # several machines); empty: the data directory.
    storage_dir: Path | None = None
    personal_id_pattern: str = r"^\d{12}$"
    cookie_secure: bool = False
    # Reverse proxies whose X-Forwarded-For is believed (login throttling and the audit log need the
    # real client address); empty: the connection's own address.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Web origins allowed to open the live-room socket. Empty: the server's own origin only. When set,
    # list the server's own public origin too (e.g. https://lop.truong.edu.vn).
    allowed_origins: list[str] = Field(default_factory=list)
    session_ttl_hours: float = Field(12, gt=0)
    join_token_ttl_seconds: int = Field(60, ge=5, le=60)
    login_max_failures_per_account: int = Field(5, ge=1)
    login_max_failures_per_address: int = Field(100, ge=1)  # a school's pupils may share one NAT address
    login_failure_window_seconds: int = Field(15 * 60, ge=1)
    reconnect_grace_seconds: float = Field(60, gt=0, le=3600)
    # The media plane's own addresses: where it offers ICE candidates (empty: every interface of the
    # machine), and the public address to announce instead when the server is behind 1:1 NAT.
    media_host_addresses: list[str] = Field(default_factory=list)
    media_announced_address: str = ""
    recording_min_free_bytes: int = Field(1024**3, ge=0)  # refuse to start recording below this
    students_see_classmates: bool = False  # do students receive each other's cameras?
    # Recordings hold learners' microphones (while on), cameras (on stage) and shared screens too;
    # false: the teacher's tracks only (a school that must not keep children's faces and voices).
    record_students: bool = True
    quality_report_seconds: float = Field(5, gt=0, le=60)  # how often the teacher hears of connection quality
    handout_max_bytes: int = Field(20 * 1024 * 1024, gt=0)
    handout_allowed_types: list[str] = Field(
        default_factory=lambda: [
            "application/pdf",
            "image/png",
            "image/jpeg",
            "text/plain",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ]
    )
    ice_servers: list[IceServer] = Field(default_factory=list)
    # The school's TURN server with short-lived credentials (coturn's `use-auth-secret`, liveclass/turn.py):
    # every /join answer gets its own username and credential made from `turn_secret`, valid for
    # `turn_credential_seconds`. Both the URLs and the secret, or neither.
    turn_urls: list[str] = Field(default_factory=list)
    # coturn's `static-auth-secret`. SecretStr: shown as '**********' in reprs and never logged or answered.
    turn_secret: SecretStr | None = None
    # coturn checks the expiry whenever a relay is set up (a relay already running keeps going through its
    # refreshes: checked with coturn 4.6.1, tests/test_turn.py). A client sets up new relays with the same
    # join answer all through the period (camera or screen share turned on later, a renegotiation), so a
    # credential must outlive the longest period plus its overtime. A new /join (every reconnect) gets a new one.
    turn_credential_seconds: int = Field(4 * 3600, ge=60, le=86400)
    # The retention run (liveclass/archive/retention.py): this long after start, then every
    # `retention_interval_hours` (0: never; run `liveclass records purge` instead).
    retention_interval_hours: float = Field(24, ge=0)
    retention_start_delay_seconds: float = Field(300, ge=0)
    # A running session whose period ended this long ago, with nobody connected, ends by itself
    # (auto_ended); checked every `auto_end_check_seconds`.
    auto_end_grace_minutes: float = Field(15, ge=0, le=24 * 60)
    auto_end_check_seconds: float = Field(60, gt=0, le=3600)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, with the request id
    metrics_token: str = ""  # lets a scraper on another machine read /metrics (bearer token)

    @field_validator("personal_id_pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("node_url", "public_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be a base URL starting with http:// or https://")
        return value

    @field_validator("turn_urls")
    @classmethod
    def _turn_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not TURN_URL.match(url):
                raise ValueError(
                    f"{url!r} is not a TURN URL: write e.g. turn:turn.truong.edu.vn:3478?transport=udp "
                    "or turns:turn.truong.edu.vn:443?transport=tcp (STUN servers go in ice_servers)"
                )
        return value

    @field_validator("turn_secret")
    @classmethod
    def _turn_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # LIVECLASS_TURN_SECRET="" is "not set"
        if len(value.get_secret_value()) < 16:
            raise ValueError(
                "must be at least 16 characters long (coturn's static-auth-secret; make it long "
                "and random, e.g. `openssl rand -hex 32`)"
            )
        return value

    @model_validator(mode="after")
    def _turn_complete(self) -> "Settings":
        if self.turn_urls and self.turn_secret is None:
            raise ValueError(
                "turn_secret: LIVECLASS_TURN_URLS is set but LIVECLASS_TURN_SECRET is not; set it to "
                "coturn's static-auth-secret, or unset LIVECLASS_TURN_URLS"
            )
        if self.turn_secret is not None and not self.turn_urls:
            raise ValueError(
                "turn_urls: LIVECLASS_TURN_SECRET is set but LIVECLASS_TURN_URLS is not; list the TURN "
                "server's URLs as JSON, e.g. "
                '["turn:turn.truong.edu.vn:3478?transport=udp"], or unset LIVECLASS_TURN_SECRET'
            )
        return self

    @model_validator(mode="after")
    def _reachable_node(self) -> "Settings":
        if self.redis_url and not self.node_url and self.host in ("0.0.0.0", "::", ""):
            raise ValueError(
                f"node_url: with Redis, a node listening on {self.host or 'every address'} must say "
                "where browsers reach it: set LIVECLASS_NODE_URL (e.g. https://lop.truong.edu.vn/node/2)"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFileSource(settings_cls))

    # -- derived values -------------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'liveclass.db').resolve()}"

    @property
    def effective_node_id(self) -> str:
        return self.node_id or f"{self.host}:{self.port}"

    @property
    def effective_node_url(self) -> str:
        """Where clients reach this node's Socket.IO ("": the public URL, or the request's own)."""
        if self.node_url:
            return self.node_url.rstrip("/")
        return f"http://{self.host}:{self.port}" if self.redis_url else self.public_url.rstrip("/")

    @property
    def socket_origins(self) -> list[str]:
        """Web origins allowed to open the live-room socket: the configured ones and the public URL's
        (pages served at the public URL connect to every node's URL). Empty: same origin only."""
        origins = list(self.allowed_origins)
        if self.public_url:
            parts = urlsplit(self.public_url)
            origins.append(f"{parts.scheme}://{parts.netloc}")
        return list(dict.fromkeys(origins))

    @property
    def files_dir(self) -> Path:
        return self.storage_dir or self.data_dir

    @property
    def handouts_dir(self) -> Path:
        return self.files_dir / "handouts"

    @property
    def recordings_dir(self) -> Path:
        return self.files_dir / "recordings"


class _TomlFileSource(PydanticBaseSettingsSource):
    """Values from the TOML file named by LIVECLASS_CONFIG (optional)."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        path = os.environ.get("LIVECLASS_CONFIG")
        if path:
            try:
                with open(path, "rb") as handle:
                    self._values = tomllib.load(handle)
            except FileNotFoundError as exc:
                raise ConfigError(f"Configuration file not found: {path} (LIVECLASS_CONFIG)") from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"Configuration file {path} is not valid TOML: {exc}") from exc

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def _problem(err: Any) -> str:
    """One validation error as `setting: what is wrong`. A check across settings names the setting in
    its own message, so it gets no `config:` prefix; pydantic's "Value error, " prefix goes."""
    message = err["msg"].removeprefix("Value error, ")
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {message}" if where else message


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning any validation problem into one readable ConfigError."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ConfigError(f"Invalid configuration: {problems}") from None
    except SettingsError as exc:
        # A list or nested value (e.g. LIVECLASS_ICE_SERVERS) that is not JSON fails before validation.
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise ConfigError(f"Invalid configuration: {exc}{cause}") from None
    return settings


def prepare_data_dir(settings: Settings) -> Settings:
    """Create the data directory and resolve the secret key (generated once, stored with mode 0600)."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # The store, recordings and handouts are personal data: only the server's own user may read them.
        if settings.data_dir.stat().st_uid == os.getuid():
            settings.data_dir.chmod(0o700)
        for sub in (settings.handouts_dir, settings.recordings_dir):
            sub.mkdir(parents=True, exist_ok=True, mode=0o700)
            if sub.stat().st_uid == os.getuid():
                sub.chmod(0o700)

    except OSError as exc:
        raise ConfigError(f"Cannot create the data directory {settings.data_dir}: {exc.strerror}") from None
    if settings.secret_key:
        if len(settings.secret_key) < 32:
            raise ConfigError("Invalid configuration: secret_key must be at least 32 characters long")
        return settings
    secret_path = settings.data_dir / SECRET_FILE_NAME
    if not secret_path.exists():
        # O_EXCL + mode 0600: never readable by others, never overwritten by a second process.
        try:
            fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        except FileExistsError:
            pass
    mode = stat.S_IMODE(secret_path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{secret_path} is readable by other users (mode {mode:o}); run: chmod 600 {secret_path}")
    return settings.model_copy(update={"secret_key": secret_path.read_text().strip()})
