"""A4: the password strength check refuses guessable passwords (zxcvbn plus our own rules).

Refused: the passwords the issue found accepted, keyboard walks, a single name or word with
digits or symbols added (pinyin names too, which zxcvbn's English lists miss), the user name
and parts of the display name. Accepted: generated passwords and decent passphrases. The
one-time password generator only produces passwords that pass.
"""

from __future__ import annotations

import pytest

from crypto.passwords import (
    HAS_NAME,
    HAS_USERNAME,
    KEYBOARD_WALK,
    TOO_EASY,
    TOO_LONG,
    TOO_SHORT,
    WORD_AND_DIGITS,
    generate_password,
    password_problems,
)

# the four from the issue, then more of the same families
REFUSED = [
    "Zhang123456789",
    "Qwerty123456!",
    "1qaz2wsx3edc4rfv",
    "Password12345",
    "zxcvbnm,./1234",
    "asdfghjkl;123",
    "qazwsxedcrfv12",
    "1q2w3e4r5t6y7u",
    "Wangwei19880808",
    "Liming2024!!!",
    "xiaoming123456",
    "2024zhangsan!!",
    "张伟19900101!!",
    "woaini1314520",
    "P@ssw0rd2024!",
    "abc123456789",
    "aaaaaaaaaaaaaaaa",
]
ACCEPTED = [
    "correct horse battery staple",
    "mountain tiger violet spoon",
    "kP3xQ9mZ2vL8nR4tY6wB",
    "Tr0ub4dor&3xyzq",
    "violet tractor 47 harbour",
    "夜里 三只猫 在屋顶 唱歌",
]


@pytest.mark.parametrize("password", REFUSED)
def test_guessable_passwords_are_refused(password: str) -> None:
    assert password_problems(password), password


@pytest.mark.parametrize("password", ACCEPTED)
def test_decent_passwords_are_accepted(password: str) -> None:
    assert password_problems(password, username="hanna", display_name="Hanna Li") == []


def test_reasons_name_the_pattern() -> None:
    assert password_problems("short") == [TOO_SHORT]
    assert password_problems("x" * 257) == [TOO_LONG]
    assert KEYBOARD_WALK in password_problems("zxcvbnm,./1234")
    assert KEYBOARD_WALK in password_problems("qwertyuiop[]123")
    assert WORD_AND_DIGITS in password_problems("Wangwei19880808")
    assert WORD_AND_DIGITS in password_problems("Liming2024!!!")
    assert KEYBOARD_WALK in password_problems("1qaz2wsx3edc4rfv")
    assert KEYBOARD_WALK in password_problems("1q2w3e4r5t6y7u")
    assert WORD_AND_DIGITS in password_problems("Password12345")
    assert TOO_EASY in password_problems("P@ssw0rd2024!")


def test_own_names_are_refused() -> None:
    assert password_problems("Zhangwei.station.42", username="zhangwei") == [HAS_USERNAME]
    # the display name's parts, plus digits: the user's own name-plus-digits
    problems = password_problems(
        "Xiaohong19920611!", username="hongx", display_name="Xiaohong Chen"
    )
    assert HAS_NAME in problems and WORD_AND_DIGITS in problems
    assert HAS_NAME in password_problems(
        "chen violet tractor harbour", username="xc", display_name="Xiaohong Chen"
    )
    # the same passphrase for someone else is fine
    assert password_problems("chen violet tractor harbour", username="ab", display_name="Li") == []


def test_generated_one_time_passwords_pass() -> None:
    for _ in range(200):
        pw = generate_password()
        assert len(pw) == 20
        assert password_problems(pw, username="alice", display_name="Alice") == []
