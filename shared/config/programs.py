"""The sections of each program. They live here, not in the programs, because `tumorsearch run` reads
the same variables as the programs it starts (to know where they listen) and programs never import
each other. Each program composes its settings object from these in services/<program>/settings.py."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.config.sections import Section


# Storage SOP classes the listener accepts by default: what the worker can process (PS3.4 B.5).
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_UID = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$"
_AE_TITLE = r"^[ -~]*[!-~][ -~]*$"


def _comma_list(value: object) -> object:
    """Environment values are strings: "a,b" becomes ("a", "b"), and so does a JSON list '["a", "b"]';
    lists pass through."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"expected a JSON list or comma-separated values, found {value!r}") from None
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class ListenerSection(Section):
    host: str = Field("127.0.0.1", description="Address the DICOM listener binds; `0.0.0.0` to accept the PACS "
                                               "from the network.")
    port: int = Field(11112, ge=1, le=65535, description="DICOM port (11112 is the registered DICOM port).")
    ae_title: str = Field("TUMORSEARCH", min_length=1, max_length=16, pattern=_AE_TITLE,
                          description="Called AE title the listener answers to.")
    max_associations: int = Field(16, ge=1, le=1000, description="Concurrent associations accepted.")
    max_connections: int = Field(64, ge=1, le=4000,
                                 description="TCP connections open at once, associated or not; more are closed at "
                                             "once, so idle sockets cannot starve `max_associations`.")
    network_timeout_s: float = Field(60.0, gt=0, description="Seconds of silence on a socket before it is closed.")
    acse_timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for association messages (a connection "
                                                          "that sends no association request is closed after it).")
    dimse_timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for DIMSE messages.")
    peers: tuple[str, ...] = Field(
        ("*@127.0.0.1/32", "*@::1/128"),
        description="Allow-list of peers, comma-separated `CALLING_AE@address-or-network` (`*` = any calling AE "
                    "title), e.g. `PACS@10.1.2.3,PACS@10.2.0.0/16`. Other addresses are disconnected before "
                    "any DICOM is read; other AE titles are rejected.")
    sop_classes: tuple[str, ...] = Field(
        (MR_IMAGE, ENHANCED_MR_IMAGE, CT_IMAGE, SECONDARY_CAPTURE), min_length=1,
        description="Storage SOP class UIDs accepted, comma-separated (default: MR, Enhanced MR, CT, "
                    "Secondary Capture).")
    max_pdu_bytes: int = Field(4 * 1024 * 1024, ge=16384, le=256 * 1024 * 1024,
                               description="Largest PDU accepted, advertised to peers and enforced from the PDU "
                                           "header before its body is read (a larger one aborts the association).")
    min_free_disk_mb: int = Field(1024, ge=0, description="Free space (MiB) under which new associations are "
                                                          "refused and C-STORE answers 0xA700 (out of resources).")
    quiet_period_s: float = Field(5.0, gt=0, le=3600, description="Seconds without a new instance after which a "
                                                                  "study is handed to the worker.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of the Prometheus metrics endpoint on `host`; "
                                                             "0 turns it off.")
    tls_certificate: Path | None = Field(None, description="PEM certificate of the listener; with "
                                                           "`tls_private_key`, turns on DICOM TLS.")
    tls_private_key: Path | None = Field(None, description="PEM private key of `tls_certificate`.")
    tls_client_ca: Path | None = Field(None, description="PEM CA bundle; when set, peers must present a client "
                                                         "certificate signed by it.")

    @field_validator("peers", "sop_classes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("peers")
    @classmethod
    def _peer_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            ae_title, at, network = entry.rpartition("@")
            if not at or not (ae_title == "*" or (len(ae_title) <= 16 and re.match(_AE_TITLE, ae_title))):
                raise ValueError(f"a peer as CALLING_AE@network (AE title of 1-16 characters or *); found {entry!r}")
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"an IP address or network after @ in a peer; found {entry!r}") from None
        return value

    @field_validator("sop_classes")
    @classmethod
    def _uids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [uid for uid in value if len(uid) > 64 or not re.match(_UID, uid)]
        if bad:
            raise ValueError(f"SOP class UIDs (digits and dots, at most 64 characters); found {bad}")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> "ListenerSection":
        if (self.tls_certificate is None) != (self.tls_private_key is None):
            raise ValueError("tls_certificate and tls_private_key together (both or neither); found only one")
        if self.tls_client_ca is not None and self.tls_certificate is None:
            raise ValueError("tls_certificate when tls_client_ca is set; found no certificate")
        return self


class GatewaySection(Section):
    host: str = Field("127.0.0.1", description="Address the HTTP gateway binds.")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port of the gateway.")
    threads: int = Field(8, ge=1, le=256, description="Request threads of the WSGI server.")
    model_version: str | None = Field(None, description="Collection the gateway searches (`tumors__<version>`); "
                                                        "empty = the version of the checkpoint shipped in the "
                                                        "package (the worker's default).")
    auth_disabled: bool = Field(False, description="Serve without authentication. Only for a local demo on "
                                                   "loopback; every request is then the user `anonymous` (admin).")
    bootstrap_admin_key: SecretStr | None = Field(None, description="An admin API key accepted from the start "
                                                                    "(to create the others); kept hashed in memory.")
    oidc_issuer: str | None = Field(None, description="OpenID Connect issuer (`iss`) of accepted bearer tokens; "
                                                      "empty = no OIDC, API keys only.")
    oidc_audience: str | None = Field(None, description="Required `aud` of OIDC tokens.")
    oidc_jwks_url: str | None = Field(None, description="JWKS URL of the issuer (https:// or file://).")
    oidc_algorithms: list[str] = Field(["RS256", "ES256"], description="Accepted JWT signature algorithms "
                                                                       "(never `none` or HMAC).")
    oidc_role_claim: str = Field("roles", description="Token claim listing the caller's roles.")
    oidc_admin_role: str = Field("tumorsearch-admin", description="Role value in that claim that makes an admin; "
                                                                  "any other authenticated caller is a viewer.")
    rate_limit_per_minute: int = Field(3000, ge=1, description="Requests per caller per minute (Redis counter); "
                                                                      "one page view is k + 2 requests (thumbnails).")
    max_k: int = Field(100, ge=1, le=10000, description="Largest `k` of a similar-tumour query.")
    # Off by default: each expanded query costs the vector store a second exact search, and on the embedded
    # store that halves the gateway's throughput, below its 200 queries/s goal (docs/gateway.md, "Speed").
    # The setting to turn on is shared.vectorstore.expansion.DEFAULT_NEIGHBOURS (10), chosen on a validation
    # fold; not imported, so that building settings never loads numpy.
    query_expansion: int = Field(0, ge=0, le=100, description="Nearest tumours whose vectors, weighted by "
                                                              "similarity, are added to a similar-tumour query "
                                                              "before the final ranking; 10 is the validated "
                                                              "setting (higher mAP, about half the queries/s: "
                                                              "docs/model.md, \"Query expansion\"); 0 = rank by "
                                                              "the tumour's own vector.")
    max_body_bytes: int = Field(65536, ge=1024, description="Largest request body accepted.")
    cors_origins: list[str] = Field([], description="Origins allowed to call the API from a browser "
                                                    "(comma-separated or a JSON list); empty = same origin only.")
    region_timeout_s: float = Field(30.0, gt=0, description="Seconds a region search waits for the worker's "
                                                            "embedding before answering 504.")
    trusted_proxies: int = Field(0, ge=0, le=5, description="Reverse proxies (ingress) in front of the gateway whose "
                                                            "X-Forwarded-For is trusted for the client address.")

    @field_validator("oidc_algorithms", "cors_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _comma_list(value)

    @model_validator(mode="after")
    def _demo_only_on_loopback(self) -> "GatewaySection":
        if self.auth_disabled and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"auth_disabled: expected only with host on loopback (a local demo), found host "
                             f"{self.host!r}")
        bad = [a for a in self.oidc_algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if bad:
            raise ValueError(f"oidc_algorithms: expected asymmetric algorithms (RS*, ES*, PS*, EdDSA), found {bad}")
        return self


class WorkerSection(Section):
    concurrency: int = Field(1, ge=1, le=64, description="Studies processed at once by one worker process "
                                                         "(one per GPU is the rule).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto`: CUDA when present, else CPU.")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="Arithmetic of the network: `auto` = fp16 on CUDA, bf16 on a CPU that computes it "
                            "natively (AVX-512 BF16 or AMX), else fp32 (emulated bf16 is about 6x slower).")
    max_deliveries: int = Field(3, ge=1, le=100, description="Deliveries of one task before it is rejected "
                                                             "as poison (a study that kills the worker).")
    checkpoint: Path | None = Field(None, description="Model checkpoint folder; empty = the one shipped in the "
                                                      "package (shared/model/checkpoints/figshare-2d).")
    series_rule: Literal["post_contrast_t1", "all"] = Field(
        "post_contrast_t1", description="Which MR series of a study are processed: the most likely post-contrast "
                                        "T1 one, or every MR series.")
    max_image_mb: int = Field(1024, ge=1, le=65536, description="Largest declared pixel data of one series "
                                                                "(rows x columns x frames x bits), refused "
                                                                "before decoding.")
    min_tumor_area_mm2: float = Field(20.0, ge=0, description="Smallest tumour kept on a single-slice study.")
    min_tumor_volume_mm3: float = Field(200.0, ge=0, description="Smallest tumour kept in a volume.")
    seg_destination: str | None = Field(None, pattern=r"^[^@]{1,16}@[^:]+:[0-9]{1,5}$",
                                        description="`AE@host:port` to C-STORE each DICOM SEG to (e.g. the PACS); "
                                                    "empty = keep it on disk only.")
    patient_hash_key: SecretStr | None = Field(None, description="Key of the patient hash (same-patient "
                                                                 "exclusion); empty = a random key kept in "
                                                                 "<home>/keys/patient-hash.key.")
    soft_time_limit_s: int = Field(900, ge=10, description="A study taking longer is stopped and marked failed; "
                                                           "keep it below the broker's visibility timeout.")


class VectorHostSection(Section):
    host: str = Field("127.0.0.1", description="Address the embedded vector store binds; keep it on loopback.")
    port: int = Field(6333, ge=1, le=65535, description="Port of the embedded vector store (Qdrant's REST port).")
