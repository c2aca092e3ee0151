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

# Rejected rows (written under _rejected/).
REASON = "reason"
DETAIL = "detail"
REJECTED_COLUMNS = [ID, SOURCE_URI, SOURCE_ROW, REASON, DETAIL]

# Internal: carried between stages only.
UNIT_ID = "_unit_id"
UNIT_ROWS = "_unit_rows"
FILE_ROWS = "_file_rows"  # rows of the unit's whole file, recorded in its marker
INPUT_IDS = "_input_ids"
PADDED_LEN = "_padded_len"

# Work-unit descriptors (one row per unit) flowing into the read stage.
UNIT_URI = "uri"
UNIT_FIRST_ROW = "first_row"
UNIT_NUM_ROWS = "num_rows"
UNIT_FILE_ROWS = "file_rows"
UNIT_ERROR = "_unit_error"  # set when a whole unit could not be read
