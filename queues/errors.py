"""Domain errors, each with a message a person can act on."""

from __future__ import annotations

from datetime import datetime


class OutreachError(Exception):
    """Base of every error the domain raises on purpose."""


class ConfigError(OutreachError):
    def __init__(self, path: str, key: str, expected: str) -> None:
        self.path, self.key, self.expected = path, key, expected
        super().__init__(f"{path}: {key}: {expected}")


class DatabaseUnavailable(OutreachError):
    message = "cannot reach the database {url}: {why}"

    def __init__(self, safe_url: str, why: str) -> None:
        self.safe_url, self.why = safe_url, why
        super().__init__(self.message.format(url=safe_url, why=why))


class DatabaseBusy(DatabaseUnavailable):
    """SQLite's file stayed locked by another writer (a queue build, an import) past the wait."""

    message = "the database {url} is busy with another writer ({why}); try again in a moment"


class AuthenticationFailed(OutreachError):
    """One generic message: never say whether the user or the password was wrong, nor whether
    the account is locked (a wrong name must look like a locked account)."""

    GENERIC = (
        "Sign-in failed: check your user name and password. "
        "After 5 failed tries an account waits 15 minutes."
    )

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.GENERIC)


class SecondFactorRequired(OutreachError):
    """The password was right; the account also signs in with a one-time code (TOTP)."""

    def __init__(self) -> None:
        super().__init__("Enter the 6-digit code from your authenticator app.")


class SignInSlowed(OutreachError):
    """Too many failed sign-ins in a row from one place: the next is checked only after a wait."""

    def __init__(self, wait_seconds: int) -> None:
        self.wait_seconds = wait_seconds
        super().__init__(
            f"Too many failed sign-ins from here: wait {wait_seconds} s before trying again."
        )


class NotAllowed(OutreachError):
    pass


class LeaseLost(OutreachError):
    def __init__(self, patient_id: int) -> None:
        self.patient_id = patient_id
        super().__init__(
            f"Your hold on patient {patient_id} has expired and they went back to the queue; "
            "nothing was saved. Take the next patient."
        )


class NotCallable(OutreachError):
    """`code` is short and stable (calling_window, daily_cap, dnc_patient…); `reason` a sentence."""

    def __init__(
        self, reason: str, next_open_at: datetime | None = None, code: str = "not_callable"
    ) -> None:
        self.reason, self.next_open_at, self.code = reason, next_open_at, code
        super().__init__(reason)


class InvalidOutcome(OutreachError):
    """A wrap-up that misses a required field; `field` names it for the form."""

    def __init__(self, field: str, why: str) -> None:
        self.field, self.why = field, why
        super().__init__(f"{field}: {why}")


class WrapUpPending(OutreachError):
    def __init__(self) -> None:
        super().__init__("Finish the wrap-up of your last patient before taking the next one.")
