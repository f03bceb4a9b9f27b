"""Everything one agent command needs, opened once: folder, config, keys, platform, trust."""

from __future__ import annotations

from functools import cached_property

from agent.config import AgentConfig, AgentHome
from agent.library import LicenceBook
from agent.platform import PlatformClient, PlatformError, PlatformUnreachableError
from agent.trust import TrustStore
from licensing.core import DeviceKeys, KeyFileError, LicensingError


class AgentError(Exception):
    """A problem the user can act on; the CLI prints it without a traceback."""


class Agent:
    def __init__(self, home: AgentHome, config: AgentConfig | None = None) -> None:
        self.home = home
        self.config = config or home.load_config()

    @cached_property
    def platform(self) -> PlatformClient:
        return PlatformClient(self.config.platform_url, self.config.token)

    @cached_property
    def trust(self) -> TrustStore:
        self.home.ensure()
        return TrustStore(self.home.trust_dir)

    @cached_property
    def licences(self) -> LicenceBook:
        self.home.ensure()
        return LicenceBook(self.home.licences_dir)

    @cached_property
    def device(self) -> DeviceKeys:
        if not self.home.device_key_path.exists():
            raise AgentError("This agent has no device keys yet: run `init` first.")
        try:
            return DeviceKeys.load(self.home.device_key_path)
        except (KeyFileError, LicensingError) as exc:
            raise AgentError(f"Cannot use the device keys: {exc}") from exc

    def require_login(self) -> None:
        if not self.config.token:
            raise AgentError("Not logged in: run `login` first.")

    def refresh_trust(self) -> bool:
        """Fetch the platform's keys and newest revocation list; False if unreachable."""
        try:
            self.trust.update_keys(self.platform.jwks())
            self.trust.offer_revocations(self.platform.revocations())
            self._report_equivocation()
        except PlatformUnreachableError:
            return False
        except (PlatformError, LicensingError) as exc:
            raise AgentError(f"The platform's keys or revocation list do not verify: {exc}") \
                from exc
        return True

    def _report_equivocation(self) -> None:
        """Send held evidence of an equivocating revocation signer, once."""
        evidence = self.trust.equivocation()
        if evidence is None or evidence.get("reported"):
            return
        try:
            self.platform.report_equivocation(first=str(evidence["first"]),
                                              second=str(evidence["second"]))
        except PlatformError:
            return  # kept, and offered again at the next refresh; `status` shows it
        self.trust.equivocation_reported()

    def close(self) -> None:
        if "platform" in self.__dict__:
            self.platform.close()
