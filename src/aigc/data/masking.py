"""Data masking (数据脱敏): customer data in a text replaced by typed placeholders in the style the Bitext data
uses (`{{Email}}`, `{{Card Number}}`, ...), so that it never reaches a log line, a trace or, when asked, a model.

What counts, most specific first (a span taken by one kind is not looked at again):
- e-mail addresses;
- IBANs whose mod-97 check passes, and payment-card numbers (13-19 digits, spaces or dashes between) whose Luhn
  check passes - both checked by python-stdnum, so an order number that merely looks long is not a card;
- IP addresses, v4 and v6 (what Python's ipaddress parses);
- phone numbers as Google's libphonenumber finds them (python-phonenumbers, offline): international numbers
  anywhere, national ones of `region`;
- account-like numbers: any other number of 8 or more digits, written whole or in groups of 3 or more with
  single spaces between (not dashes, which dates have), not inside a word.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterator

PLACEHOLDERS = {
    "email": "{{Email}}",
    "iban": "{{IBAN}}",
    "card": "{{Card Number}}",
    "ip": "{{IP Address}}",
    "phone": "{{Phone Number}}",
    "account": "{{Account Number}}",
}
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", re.IGNORECASE)
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
IPV6 = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])")
# groups of 3 digits or more, single spaces between (not dashes, which dates have), not inside a word or a number
ACCOUNT = re.compile(r"(?<![\w.-])\d{3,}(?: \d{3,})*(?![\w.-])")

Span = tuple[int, int]


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def checked(pattern: re.Pattern, valid: Callable[[str], bool]) -> Callable[[str], Iterator[Span]]:
    """The spans of `pattern` in a text that `valid` accepts."""

    def find(text: str) -> Iterator[Span]:
        return (m.span() for m in pattern.finditer(text) if valid(m.group()))

    return find


def is_iban(text: str) -> bool:
    from stdnum import iban

    return iban.is_valid(text)


def ibans(text: str) -> Iterator[Span]:
    """The IBANs in a text: each candidate, or its longest prefix ending at a space, that passes mod 97 (so a word
    written after one is not taken for its last group)."""
    for match in IBAN.finditer(text):
        candidate = match.group()
        while candidate and not is_iban(candidate):
            candidate = candidate.rpartition(" ")[0]
        if candidate:
            yield match.start(), match.start() + len(candidate)


def is_card(text: str) -> bool:
    from stdnum import luhn

    number = digits(text)
    return 13 <= len(number) <= 19 and luhn.is_valid(number)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Masker:
    """Masks the customer data of texts; `region`: the country whose national phone numbers are recognised (an
    ISO 3166 code, as libphonenumber takes it)."""

    def __init__(self, region: str = "US"):
        self.region = region
        self.finders: dict[str, Callable[[str], Iterator[Span]]] = {
            "email": checked(EMAIL, lambda _: True),
            "iban": ibans,
            "card": checked(CARD, is_card),
            "ip": lambda text: (*checked(IPV4, is_ip)(text), *checked(IPV6, is_ip)(text)),
            "phone": self.phones,
            "account": checked(ACCOUNT, lambda number: len(digits(number)) >= 8),
        }

    def phones(self, text: str) -> Iterator[Span]:
        import phonenumbers

        matcher = phonenumbers.PhoneNumberMatcher(text, self.region, leniency=phonenumbers.Leniency.VALID)
        return ((match.start, match.end) for match in matcher)

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, kind) of each piece of customer data in `text`, in order, none overlapping."""
        taken: list[tuple[int, int, str]] = []
        for kind, find in self.finders.items():
            for start, end in find(text):
                if all(end <= s or start >= e for s, e, _ in taken):
                    taken.append((start, end, kind))
        return sorted(taken)

    def mask(self, text: str) -> str:
        """`text` with each piece of customer data replaced by its kind's placeholder."""
        parts, last = [], 0
        for start, end, kind in self.spans(text):
            parts += [text[last:start], PLACEHOLDERS[kind]]
            last = end
        return "".join(parts) + text[last:]


@functools.cache
def default_masker() -> Masker:
    """The Masker of US phone numbers, one per process (made once, on first use)."""
    return Masker()
