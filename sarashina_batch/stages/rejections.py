"""Why a row is not embedded: the `reason` column of `_rejected/`, one enum for every stage that
rejects (prepare, passages, embed). docs/design.md's table of reasons is tested against it, and
the run summary and the `rows_rejected` metric count by it."""

from __future__ import annotations

from enum import StrEnum


class Rejection(StrEnum):
    NULL = "null"  # the text is null
    EMPTY = "empty"  # empty or whitespace only
    NOT_STRING = "not_string"  # a number, a list, ...
    UNDECODABLE = "undecodable"  # bytes that are not UTF-8
    INVALID_ROLE = "invalid_role"  # prompt.role_column is neither document nor query
    NULL_ID = "null_id"  # input.id_column is null
    INVALID_ID = "invalid_id"  # NaN, empty, or bytes that are not UTF-8
    TOKENIZER_ERROR = "tokenizer_error"  # the tokenizer failed or gave no token
    CHUNKING_ERROR = "chunking_error"  # could not be cut into passages
    OUT_OF_MEMORY = "out_of_memory"  # did not fit the device's memory even alone
    NON_FINITE_EMBEDDING = "non_finite_embedding"  # the model gave NaN or infinity
