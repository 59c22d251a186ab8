"""Everything `aigc serve` can be told, as one pydantic-settings model: from the command line, or from
`AIGC_SERVE_*` environment variables. The CLI exports its settings to the environment so that each of uvicorn's
worker processes rebuilds the same object; nothing is read at import time."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aigc.core.errors import UserError

ENV_PREFIX = "AIGC_SERVE_"
NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # model and key names: safe in URLs, logs and metric labels


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    # Every field with a description is also a flag of `aigc serve` (see cli/serve.py).
    # served name -> checkpoint file, or the checkpoints of an ensemble served as one model
    models: dict[str, Path | Annotated[list[Path], Field(min_length=2)]] = Field(min_length=1)
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port")
    workers: int = Field(1, ge=1, description="uvicorn worker processes, each with its own copy of the models")
    api_keys: Path | None = Field(None, description="file of API key hashes, one per line (made by aigc keys add)")
    # The same hashes without a file (for containers whose secrets come as environment variables): comma-separated.
    api_key_hashes: Annotated[list[str], NoDecode] = []
    insecure_public: bool = Field(False, description="allow a non-loopback --host without API keys")
    device: str = Field("cpu", description="cpu or cuda")
    threads: int = Field(0, ge=0, description="torch threads per worker (0: torch's default)")
    queue_size: int = Field(16, ge=1, description="requests waiting beyond this many are answered 503 at once")
    max_batch: int = Field(
        64, ge=1, description="most images drawn in one forward pass; a text model's KV slots (sequences at once)"
    )
    max_n: int = Field(64, ge=1, description="most images per request")
    max_steps: int = Field(100, ge=1, le=1000, description="most sampling steps per request")
    max_pixels: int = Field(64 * 64 * 64, ge=1, description="most output pixels per request (n x height x width)")
    max_tokens: int = Field(1024, ge=1, le=4096, description="most tokens per completion")
    max_prompt_tokens: int = Field(2048, ge=1, description="longest prompt, in the model's tokens")
    max_texts: int = Field(256, ge=1, description="most texts per classification request")
    max_text_chars: int = Field(4096, ge=1, description="longest text to classify, in characters")
    max_history: int = Field(1000, ge=1, description="most items in a recommendation request's history")
    mask_prompts: bool = Field(
        False, description="replace customer data (e-mails, cards, phones...) with placeholders before a model reads it"
    )
    max_body_bytes: int = Field(16384, ge=256, description="largest request body")
    rate: float = Field(120.0, gt=0, description="requests per minute per API key (or per client without keys)")
    burst: int = Field(20, ge=1, description="requests a key may send at once before the rate applies")

    @field_validator("api_key_hashes", mode="before")
    @classmethod
    def _split(cls, value):
        return [h.strip() for h in value.split(",") if h.strip()] if isinstance(value, str) else value

    @field_validator("models")
    @classmethod
    def _plain_names(cls, models):
        for name in models:
            if not NAME.match(name):
                raise ValueError(f"model name {name!r}: use letters, digits, '-', '_' and '.' (NAME=PATH sets it)")
        return models

    @model_validator(mode="after")
    def _closed_unless_keyed(self):
        if not (self.api_keys or self.api_key_hashes or self.insecure_public or is_loopback(self.host)):
            raise ValueError(
                f"--host {self.host} is reachable from other machines but no API keys are set; "
                "give --api-keys FILE, or --insecure-public to serve openly"
            )
        return self

    def to_environment(self) -> dict[str, str]:
        """The environment variables from which `ServeSettings()` rebuilds these settings in another process."""
        values = self.model_dump(mode="json")
        values["api_key_hashes"] = ",".join(values["api_key_hashes"])
        return {
            ENV_PREFIX + name.upper(): value if isinstance(value, str) else json.dumps(value)
            for name, value in values.items()
            if value is not None
        }


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**values) -> ServeSettings:
    """Settings from `values` over the environment; a bad value is a UserError naming the setting."""
    try:
        return ServeSettings(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(f"serve setting {where}: {message}" if first["loc"] else message) from None
