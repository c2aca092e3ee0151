"""The content key: a hash of exactly what the model sees."""

from sarashina_batch.stages.content import content_key, content_keys, rendered_prompts


def test_the_content_key_is_what_the_model_sees():
    prefixes = {"document": "text: ", "query": "task: 検索\nquery: "}
    texts = ["猫が好き\n", "猫が好き", "猫が好き", None]
    prompts, truncated = rendered_prompts(
        texts, ["document", "document", "query", None], [None, None, None, "null"], prefixes, max_chars=3
    )
    assert (
        prompts == ["text: 猫が好", "text: 猫が好", "task: 検索\nquery: 猫が好", None] and truncated[:3] == [True] * 3
    )
    keys = content_keys(prompts)
    assert keys[0] == keys[1] == content_key("text: 猫が好"), "the strip and the cap are part of what is hashed"
    assert keys[2] != keys[0], "a role (prompt) change is a new key"
    assert keys[3] is None
