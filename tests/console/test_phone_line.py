"""The console's phone line takes every [sip] setting the softphone knows: a trunk configured for
TLS, SRTP or a P-Asserted-Identity caller ID must not silently dial plain UDP from the console
while `outreach call test` used TLS."""

from __future__ import annotations

import dataclasses

from console.config import SipSettings
from console.services.phone_line import account_from_settings
from console.softphone.account import SipAccount


def test_every_sip_setting_reaches_the_softphone_account() -> None:
    sip = SipSettings(
        server="trunk.example.test",
        transport="tls",
        tls_ca_file="/etc/outreach/ca.pem",
        srtp="required",
        caller_id_mode="remote-party-id",
    )
    account = account_from_settings(sip)
    assert (account.transport, account.tls_ca_file, account.srtp, account.caller_id_mode) == (
        "tls",
        "/etc/outreach/ca.pem",
        "required",
        "remote-party-id",
    )
    # Every setting the account shares a name with is passed on (a new one must be too).
    for field in dataclasses.fields(SipAccount):
        if hasattr(sip, field.name):
            assert getattr(account, field.name) == getattr(sip, field.name), field.name
