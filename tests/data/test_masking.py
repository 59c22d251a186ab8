"""Data masking: each kind of customer data found and replaced by its placeholder, checksums deciding between a
card or an IBAN and a number that only looks like one, and text without customer data left as it is."""

import pytest

from aigc.data.masking import Masker

PLANTED = {
    "jane.doe+orders@example.co.uk": "{{Email}}",
    "GB82 WEST 1234 5698 7654 32": "{{IBAN}}",
    "DE89370400440532013000": "{{IBAN}}",
    "4111 1111 1111 1111": "{{Card Number}}",
    "5500-0000-0000-0004": "{{Card Number}}",
    "192.168.10.7": "{{IP Address}}",
    "2001:db8::8a2e:370:7334": "{{IP Address}}",
    "+44 20 7946 0958": "{{Phone Number}}",
    "(415) 555-2671": "{{Phone Number}}",
    "0012345678": "{{Account Number}}",
}


@pytest.mark.parametrize(("value", "placeholder"), PLANTED.items())
def test_each_kind_is_replaced_by_its_placeholder(value, placeholder):
    masked = Masker().mask(f"hi, mine is {value}, thanks")
    assert masked == f"hi, mine is {placeholder}, thanks"


def test_checksums_decide_what_a_long_number_is():
    masker = Masker()
    assert masker.mask("card 4111 1111 1111 1112") == "card {{Account Number}}"  # fails Luhn: not a card
    assert "{{IBAN}}" not in masker.mask("iban GB82 WEST 1234 5698 7654 33")  # fails mod 97
    assert masker.mask("version 1.2.300.4") == "version 1.2.300.4"  # 300 is no octet


def test_text_without_customer_data_is_left_as_it_is():
    text = "I want to cancel order {{Order Number}}, bought on 12/03 for $45.99 (2 items, ref 12345)."
    assert Masker().mask(text) == text


def test_several_values_in_one_text_are_all_masked_in_place():
    text = "mail a@b.io or call +1 415 555 2671; card 4111-1111-1111-1111 from 10.0.0.1"
    expected = "mail {{Email}} or call {{Phone Number}}; card {{Card Number}} from {{IP Address}}"
    assert Masker().mask(text) == expected


def test_national_phone_numbers_follow_the_region():
    assert Masker("GB").mask("ring 020 7946 0958 now") == "ring {{Phone Number}} now"
    assert Masker("US").mask("ring 020 7946 0958 now") == "ring {{Account Number}} now"  # not a US number


def test_an_iban_ends_where_its_check_passes_and_digits_inside_words_stay():
    masker = Masker()
    assert masker.mask("pay GB82 WEST 1234 5698 7654 32 EUR today") == "pay {{IBAN}} EUR today"
    assert masker.mask("pay gb82west12345698765432 now") == "pay {{IBAN}} now"
    assert masker.mask("commit deadbeef12345678, build v2.20240601") == "commit deadbeef12345678, build v2.20240601"
    assert masker.mask("took 12 34 56 78 ms") == "took 12 34 56 78 ms"  # small numbers in a row are no account
