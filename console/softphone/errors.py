"""The softphone's one error, apart from the thread (phone.py) and what it loads: screens and
services catch it in a console that may never start a softphone (manual dialling)."""


class SoftphoneError(Exception):
    """The softphone cannot do what was asked (bad input, socket in use); says what and where."""
