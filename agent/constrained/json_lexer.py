"""Where a JSON output stands lexically: in a key or a value, inside a string or a number.

Two uses, both cheaper than asking the grammar:

* Number length. JSON grammars accept numbers of any length, and a weak model (or random
  weights) keeps appending digits while it may: a 5,000-digit integer no longer parses in
  Python and `1e999` parses as infinity. Declared numbers get bounds in the schema
  (`schemas.narrow`); numbers inside values the schema leaves open are capped here at
  `MAX_NUMBER_CHARS` characters, by refusing a sampled token that would go past it.
* Plans that survive a token. In llguidance's JSON grammars a string or number *value* is
  one lexeme, and what may follow it does not depend on its content. So a token that stays
  inside the current value leaves the plan to finish valid as soon as the plan's first
  bytes, up to the end of that value, are accepted again: a check of one or two tokens
  instead of the whole plan (keys are different: their text picks the property).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_NUMBER_CHARS = 24
_NUMBER = frozenset(b"0123456789.eE+-")
_HEX = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True)
class JsonLexState:
    stack: tuple[int, ...] = ()  # open containers: ord("{") or ord("[")
    expect_key: bool = False  # in an object, the next string is a key
    in_string: bool = False
    in_key: bool = False
    escape: int = 0  # 0: none; 1: after a backslash; 2..5: hex digits of \\u left + 1
    number_chars: int = 0
    serial: int = 0  # changes whenever a lexeme starts or ends

    def after(self, data: bytes) -> JsonLexState:
        stack = list(self.stack)
        expect_key, in_string, in_key = self.expect_key, self.in_string, self.in_key
        escape, number, serial = self.escape, self.number_chars, self.serial
        for byte in data:
            if in_string:
                if escape == 1:
                    escape = 5 if byte == 0x75 else 0  # \u: four hex digits follow
                elif escape > 1:
                    escape = escape - 1 if byte in _HEX else 0
                    if escape == 1:
                        escape = 0
                elif byte == 0x5C:
                    escape = 1
                elif byte == 0x22:
                    in_string = False
                    serial += 1
                continue
            if byte in _NUMBER:
                if not number:
                    serial += 1
                number += 1
                continue
            if number:
                number = 0
                serial += 1
            if byte == 0x22:
                in_string, in_key = True, bool(stack) and stack[-1] == 0x7B and expect_key
                serial += 1
            elif byte in (0x7B, 0x5B):  # { [
                stack.append(byte)
                expect_key = byte == 0x7B
                serial += 1
            elif byte in (0x7D, 0x5D):  # } ]
                if stack:
                    stack.pop()
                expect_key = False
                serial += 1
            elif byte == 0x3A:  # :
                expect_key = False
                serial += 1
            elif byte == 0x2C:  # ,
                expect_key = bool(stack) and stack[-1] == 0x7B
                serial += 1
            elif byte > 0x20:  # true, false, null
                serial += 1
        return JsonLexState(tuple(stack), expect_key, in_string, in_key, escape, number, serial)

    @property
    def number_too_long(self) -> bool:
        return self.number_chars > MAX_NUMBER_CHARS

    @property
    def in_value(self) -> bool:
        """Inside a string value (not a key) or a number, at a point it could end."""
        if self.in_string:
            return not self.in_key and self.escape == 0
        return self.number_chars > 0

    def bytes_to_value_end(self, data: bytes) -> int:
        """How many leading bytes of `data` reach the end of the current value lexeme
        (its closing quote, or the byte after a number); -1 if it does not end there."""
        state = self
        for i in range(len(data)):
            state = state.after(data[i : i + 1])
            if state.serial != self.serial:
                return i + 1
        return -1
