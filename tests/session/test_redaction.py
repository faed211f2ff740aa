from voicebot.core.redaction import PIN_MASK, mask_keyed_digits, mask_pin


def test_digit_runs_are_masked_in_any_spacing() -> None:
    for text in ("my pin is 4321", "it's 4 3 2 1", "4-3-2-1 please", "4321."):
        masked = mask_pin(text)
        assert not any(ch.isdigit() for ch in masked), masked
        assert PIN_MASK in masked


def test_spoken_number_words_are_masked() -> None:
    masked = mask_pin("my pin is four three two one")
    assert masked == f"my pin is {PIN_MASK}"


def test_text_without_numbers_is_untouched() -> None:
    assert mask_pin("what's my balance") == "what's my balance"


def test_keyed_digits_show_only_their_length() -> None:
    assert mask_keyed_digits("4321") == "****"
