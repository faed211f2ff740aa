"""Written reply text → the words a person says on the phone (what both voices read)."""

from __future__ import annotations

import pytest

from voicebot.speech.spoken import for_speech


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("You paid $42.17.", "You paid forty-two dollars and seventeen cents."),
        ("$1,234.56", "one thousand two hundred and thirty-four dollars and fifty-six cents"),
        ("$1 and $0.01", "one dollar and one cent"),
        ("$15,020", "fifteen thousand and twenty dollars"),
        ("$0.87", "eighty-seven cents"),
        ("your card ending in 4417", "your card ending in four four one seven"),
        ("ending in 0100.", "ending in zero one zero zero."),
        ("ending in 4 4 1 7", "ending in four four one seven"),
        ("Open 9 a.m. to 5 p.m.", "Open nine A M to five P M."),
        ("From 9 a.m. to 5 p.m. Is that ok?", "From nine A M to five P M. Is that ok?"),
        ("open 9am-5pm", "open nine A M to five P M"),
        ("at 9:05 p.m. today", "at nine oh five P M today"),
        ("at 9:30", "at nine thirty"),
        ("at 17:00", "at seventeen hundred"),
        ("Tuesday, December 1st, $35", "Tuesday, December first, thirty-five dollars"),
        ("March 3, 2026", "March third, twenty twenty-six"),
        ("The link works for 30 minutes.", "The link works for thirty minutes."),
        ("Monday to Friday, 9 to 5.", "Monday to Friday, nine to five."),
        ("2.5% or 1,500", "two point five percent or one thousand five hundred"),
        ("Call 555-0100.", "Call five five five, zero one zero zero."),
        ("pages 10-12", "pages ten to twelve"),
        ("Press 0.", "Press zero."),
        ("your four digit PIN, or PINs", "your four digit pin, or pins"),
    ],
)
def test_numbers_are_written_out_as_spoken(written: str, spoken: str) -> None:
    assert for_speech(written) == spoken


def test_text_without_numbers_is_unchanged() -> None:
    text = "I'm sorry, that card doesn't match our records. Please try again!"
    assert for_speech(text) == text


def test_impossible_times_and_dates_are_left_as_numbers() -> None:
    assert for_speech("13 p.m.") == "thirteen p.m."  # not a 12-hour time: no "P M"
    assert for_speech("March 45") == "March forty-five"  # not a day: no "forty-fifth"
