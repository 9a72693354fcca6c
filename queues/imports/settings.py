"""`[imports]` of config.toml: what an import assumes and how it reaches a FHIR server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # httpx loads when a server is read, not with the config
    from queues.imports.fhir_server import ServerAuth

DEFAULT_DAYS_SUPPLY = 30


@dataclass(frozen=True)
class ImportSettings:
    """`[import]` in config.toml. Secrets are the names of environment variables, never values."""

    default_days_supply: int = DEFAULT_DAYS_SUPPLY  # for a prescription with no dispense
    fhir_token_env: str = "OUTREACH_FHIR_TOKEN"  # bearer token, when set in the environment
    fhir_client_id: str = ""  # SMART Backend Services client (then the key below signs)
    fhir_private_key_env: str = "OUTREACH_FHIR_PRIVATE_KEY"
    fhir_key_id: str = ""
    fhir_token_url: str = ""  # empty: the server's .well-known/smart-configuration
    fhir_scope: str = "system/*.read"
    fhir_bulk: bool = True  # a server URL: $export (bulk) rather than paged searches

    def auth(self) -> ServerAuth:
        from queues.imports.fhir_server import ServerAuth

        return ServerAuth(
            token_env=self.fhir_token_env,
            client_id=self.fhir_client_id,
            private_key_env=self.fhir_private_key_env,
            key_id=self.fhir_key_id,
            token_url=self.fhir_token_url,
            scope=self.fhir_scope,
        )
