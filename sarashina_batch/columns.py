"""Column names, in one place. Names starting with '_' are internal and never written out."""

# The output contract (docs/design.md, "Output"): what a reader of the output dataset sees.
ID = "id"
EMBEDDING = "embedding"
SOURCE_URI = "source_uri"
SOURCE_ROW = "source_row"
TEXT_HASH = "text_hash"
NUM_TOKENS = "num_tokens"
TRUNCATED = "truncated"
ROLE = "role"
TASK = "task"
OUTPUT_COLUMNS = [ID, EMBEDDING, SOURCE_URI, SOURCE_ROW, TEXT_HASH, NUM_TOKENS, TRUNCATED, ROLE, TASK]
# Content reuse (outputs that record content keys, see RunInfo.settings): the key of exactly
# what the model saw, and where a row's vector was copied from (null: the model embedded it
# in the run that wrote the row).
CONTENT_KEY = "content_key"
REUSED_FROM = "reused_from"
REUSE_COLUMNS = [CONTENT_KEY, REUSED_FROM]
# Passages (chunking.mode=passages): which passage of the document a row is, and where it is
# in the document's text (text[char_start:char_end]); (id, passage_index) is unique.
PASSAGE_INDEX = "passage_index"
PASSAGE_COUNT = "passage_count"
CHAR_START = "char_start"
CHAR_END = "char_end"
PASSAGE_COLUMNS = [PASSAGE_INDEX, PASSAGE_COUNT, CHAR_START, CHAR_END]
# Compact vectors (output.vectors): int8 on the output's calibrated ranges, packed sign bits.
INT8_EMBEDDING = "embedding_int8"
BINARY_EMBEDDING = "embedding_binary"

# Rejected rows (written under _rejected/).
REASON = "reason"
DETAIL = "detail"
REJECTED_COLUMNS = [ID, SOURCE_URI, SOURCE_ROW, REASON, DETAIL]

# Internal: carried between stages only.
UNIT_ID = "_unit_id"
UNIT_ROWS = "_unit_rows"
FILE_ROWS = "_file_rows"  # rows of the unit's whole file, recorded in its marker
INPUT_IDS = "_input_ids"
NUM_CHARS = "_num_chars"  # characters of what the tokenizer got (the rendered prompt)
PADDED_LEN = "_padded_len"
REUSED_VECTOR = "_reused_vector"  # a vector copied from the output, in place of the model's

# Work-unit descriptors (one row per unit) flowing into the read stage.
UNIT_URI = "uri"
UNIT_FIRST_ROW = "first_row"
UNIT_NUM_ROWS = "num_rows"
UNIT_FILE_ROWS = "file_rows"
# Where the unit's read starts: the first row of the row group it was cut from (units cut from
# one row group share it and are read in one pass), or its own first row (whole row groups).
UNIT_READ_FROM = "read_from"
UNIT_ERROR = "_unit_error"  # set when a whole unit could not be read
