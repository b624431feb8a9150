"""A read through the engine's exec API that comes back empty is asked again; a real empty
answer, or a failed command, is returned as it is."""

from __future__ import annotations

from orbis.testing.engine_read import ATTEMPTS, read_retrying


def answers(*replies: tuple[int, str]):
    calls: list[int] = []

    def run() -> tuple[int, str]:
        calls.append(1)
        return replies[min(len(calls), len(replies)) - 1]

    return run, calls


def test_an_empty_answer_is_asked_again_until_the_output_comes() -> None:
    run, calls = answers((0, ""), (0, ""), (0, "key\n"))
    assert read_retrying(run) == (0, "key\n") and len(calls) == 3


def test_a_file_that_is_empty_stays_empty() -> None:
    run, calls = answers((0, ""))
    assert read_retrying(run) == (0, "") and len(calls) == ATTEMPTS


def test_a_failed_command_or_an_output_is_not_asked_again() -> None:
    run, calls = answers((1, ""))
    assert read_retrying(run) == (1, "") and len(calls) == 1
    run, calls = answers((0, "x"))
    assert read_retrying(run) == (0, "x") and len(calls) == 1
