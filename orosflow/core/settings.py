"""Runtime settings, read from the environment (prefix ``OROSFLOW_``) with embedded defaults.

Defaults make ``make serve`` work on a laptop with nothing else running: SQLite under ``var/``,
a master key file created on first start, and the loopback SMTP capture on port 8025.
"""

from __future__ import annotations

import json
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OROSFLOW_", extra="ignore")

    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str | None = None
    secret_key: SecretStr | None = Field(
        default=None, description="Base64 of 32 bytes; overrides the key file when set."
    )
    key_file: Path | None = None

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = 10.0
    mail_from: str = "orosflow@orosflow.example.se"
    mail_domain: str = "orosflow.example.se"

    portal_url: str = "http://127.0.0.1:8000"
    #: Address and port the portal listens on (``orosflow serve`` / ``orosflow portal``).
    portal_host: str = "127.0.0.1"
    portal_port: int = 8000
    #: A web session ends after this many minutes without a request …
    session_idle_minutes: int = 30
    #: … and after this many hours in all.
    session_max_hours: int = 10
    #: Reverse proxies whose ``X-Forwarded-For`` names the client (comma-separated IPs or CIDRs).
    #: Empty: the socket peer is the client, and the header is ignored.
    trusted_proxies: str = ""
    #: Every local (password) account must pass a TOTP code after its password; one without
    #: a second factor is sent to enrol it first. The demo accounts of ``make serve`` are
    #: exempt; accounts that enrolled need their code even when this is off.
    require_mfa: bool = True
    #: Show captured mail (``var/mail``) in the portal's dev view; ``orosflow serve`` turns it on.
    dev_mail: bool = False
    #: Link target for "open in Prefect" in the auditor's view (the Prefect UI's base URL).
    prefect_ui_url: str = "http://127.0.0.1:4200"
    #: Days after submission before a report's content is erased (audit trail kept).
    retention_days: int = 365
    #: Days a database backup (and a WAL archive) is kept. A period's key-encryption key is
    #: destroyed when its retention plus this has passed, so old backups cannot be read either.
    backup_days: int = Field(default=35, ge=0)
    #: File of the per-period key-encryption keys; default ``period-keys.json`` next to the
    #: master key file. Like the key file it is outside the database and its backups.
    period_key_file: Path | None = None
    #: Who receives the daily audit-chain anchor mail (comma-separated or a JSON list in the
    #: environment; empty means nobody, and start-up warns).
    auditor_emails: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Where audit anchors (the chain head, outside the database) are written; default
    #: ``<var_dir>/audit-anchors``. Keep it out of reach of whoever can write the database.
    anchor_dir: Path | None = None
    #: Minutes between the escalation sweep's anchors (files only, no mail); 0 turns them off.
    anchor_interval_minutes: int = Field(default=5, ge=0)
    #: Operator mailbox for fail-closed alerts; default ``operator@<mail_domain>``.
    operator_email: str | None = None
    #: Port of the local Prefect server that ``orosflow serve`` starts.
    prefect_port: int = 4200
    channels_file: Path | None = None

    #: Deployment that the submission entry points trigger (``flow-name/deployment-name``).
    deployment: str = "concern-report/concern-report"
    #: Seconds to wait for Prefect when creating a flow run; the receipt never waits longer.
    trigger_timeout: float = 5.0
    #: Start flow runs from actions (off in unit tests that have no Prefect server); when off,
    #: the reconciler and the escalation sweep deliver what is queued.
    flow_runs: bool = True
    #: Flow runs ``orosflow serve`` runs at once (each is a process of about 100 MB); more wait
    #: their turn instead of starving the portal. Workers take ``prefect worker start --limit``.
    flow_run_limit: int = Field(default=4, ge=1)
    #: How ``orosflow serve`` and ``orosflow runner`` start a flow run's process: ``fork`` from
    #: one process that imported the flows once (milliseconds), or ``spawn`` a new Python that
    #: imports them per run (Prefect's default: seconds). See ``orosflow.core.flow_processes``.
    flow_run_start: Literal["fork", "spawn"] = "fork"
    #: How background work (flow runs, serve's Prefect server) yields the CPU to the portal:
    #: ``idle`` runs it only when no normal process wants the core (Linux ``SCHED_IDLE``; a
    #: waking receipt takes the CPU at once), ``nice`` lowers its priority by 10 only (it
    #: keeps a share). See ``orosflow.core.lifetime``.
    background_priority: Literal["idle", "nice"] = "idle"
    #: Restarts of a report's delivery run (each after an unfinished run) before the reconciler
    #: stops restarting it and alerts the operator; its queued mail stays for the sweep.
    max_restarts: int = Field(default=5, ge=1)
    #: Flow runs the reconciler creates at once. A round may find hundreds of reports without
    #: a run (Prefect was down, or too busy to answer the portal within ``trigger_timeout``);
    #: created all at once they slowed the server so much that every creation timed out again.
    reconcile_start_limit: int = Field(default=4, ge=1)

    #: Sign-in through the organisation's OpenID Provider (issue 14). Empty issuer: off.
    #: The issuer URL; its ``/.well-known/openid-configuration`` names every endpoint.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    #: Scopes asked for (space-separated); ``openid`` is required.
    oidc_scopes: str = "openid email profile"
    #: Claims of the ID token that carry the stable subject, the e-mail and the groups.
    oidc_subject_claim: str = "sub"
    oidc_email_claim: str = "email"
    oidc_groups_claim: str = "groups"
    #: Group → role and units: a TOML or JSON file, or inline JSON
    #: (``{"group": {"role": "intake", "units": ["sdf-sodermalm"]}}``). Empty: no mapping,
    #: accounts keep the role and units an administrator gave them.
    oidc_group_map: str = ""
    #: Create an account at the first sign-in (role and units from the groups). Off: only
    #: accounts an administrator created with ``--external-id`` = the subject may sign in.
    oidc_jit: bool = False
    #: Require a second factor at the IdP: ``amr`` holds one of ``oidc_mfa_amr`` or ``acr``
    #: is one of ``oidc_mfa_acr`` (comma-separated; the acr values are also requested).
    oidc_require_mfa: bool = False
    oidc_mfa_amr: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["mfa"])
    oidc_mfa_acr: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        _networks(value)  # a typo fails at start, not silently on every sign-in
        return value

    @property
    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return _networks(self.trusted_proxies)

    @field_validator("auditor_emails", "oidc_mfa_amr", "oidc_mfa_acr", mode="before")
    @classmethod
    def _split_emails(cls, value: object) -> object:
        """``a@x.se,b@x.se``, ``["a@x.se"]`` and an empty value all work."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'orosflow.db'}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or (self.var_dir / "master-keys.json")

    @property
    def resolved_period_key_file(self) -> Path:
        return self.period_key_file or (self.resolved_key_file.parent / "period-keys.json")


def _networks(value: str) -> list[IPv4Network | IPv6Network]:
    out = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            out.append(ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"OROSFLOW_TRUSTED_PROXIES: {item!r} är ingen IP-adress eller CIDR."
            ) from None
    return out


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
