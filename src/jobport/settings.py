"""Settings: JOBPORT_* environment variables, then ./jobport.toml, then defaults."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JOBPORT_", toml_file="jobport.toml", extra="ignore"
    )

    database_url: str = "sqlite:///./jobport.db"
    host: str = "127.0.0.1"
    port: int = 8080

    # Engine
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    cancel_grace_seconds: float = Field(default=10.0, ge=0)
    heartbeat_interval: float = Field(default=1.0, gt=0)
    heartbeat_timeout: float = Field(default=30.0, gt=0)
    sweep_interval: float = Field(default=5.0, gt=0)
    log_flush_interval: float = Field(default=0.2, gt=0)
    log_batch_lines: int = Field(default=2000, ge=1)
    log_max_bytes: int = Field(default=50_000_000, ge=1024)

    # API
    max_wait_seconds: float = Field(default=300.0, ge=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    page_size_max: int = Field(default=500, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
