"""Where a number places a patient is looked up once per North American exchange
(queues.compliance.zones): that shortcut must give what a lookup of each number gives."""

from __future__ import annotations

import random

from queues.compliance.zones import _place_of_number, place_of_number


def test_every_line_of_an_exchange_is_where_its_exchange_is() -> None:
    rng = random.Random(20261130)
    # Exchanges with known quirks (a fictional 555 block, toll-free, an area code with two zones,
    # Alaska, Arizona) and a random sample of the rest.
    exchanges = ["214555", "212555", "800555", "208344", "907200", "602555", "850555"]
    exchanges += [f"{rng.randint(200, 999)}{rng.randint(200, 999)}" for _ in range(120)]
    for exchange in exchanges:
        for line in [0, 100, 199, 1234, 9999, *rng.sample(range(10_000), 20)]:
            number = f"+1{exchange}{line:04d}"
            direct = _place_of_number.__wrapped__(number)
            assert place_of_number(number) == direct, number


def test_a_number_outside_north_america_is_looked_up_itself() -> None:
    place = place_of_number("+442079460000")
    assert place.source == "+442079460000"
    assert place.zones == ("Europe/London",)
