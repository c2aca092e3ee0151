import pytest

from sarashina_batch.config import ConfigError, load_config, parse_override


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_minimal_config_gets_documented_defaults(tmp_path):
    config = load_config(write(tmp_path, "input: {uri: in}\noutput: {uri: out}\n"))
    assert config.model.max_seq_length == 8192
    assert config.model.torch_dtype == "auto"
    assert config.model.normalize is True
    assert config.prompt.role == "document"
    assert config.output.mode == "resume"


def test_unknown_key_is_rejected_with_its_name(tmp_path):
    with pytest.raises(ConfigError, match=r"input\.txt_column: unknown key; did you mean input\.text_column\?"):
        load_config(write(tmp_path, "input: {uri: in, txt_column: body}\noutput: {uri: out}\n"))


@pytest.mark.parametrize(
    "key, meant",
    [
        ("input.max_seq_length", "model.max_seq_length"),  # right name, wrong section
        ("batching.max_token_per_batch", "batching.max_tokens_per_batch"),
        ("compute.max_actor", "compute.max_actors"),
        ("batchin", "batching"),
    ],
)
def test_unknown_key_suggests_the_closest_setting(tmp_path, key, meant):
    with pytest.raises(ConfigError, match=rf"{key}: unknown key; did you mean {meant}\?"):
        load_config(write(tmp_path, "input: {uri: in}\noutput: {uri: out}\n"), {key: 1})


def test_unknown_key_without_a_near_setting_points_at_the_reference(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"compute\.colour: unknown key; check the spelling against the config "
        r"reference in docs/configuration\.md",
    ):
        load_config(write(tmp_path, "input: {uri: in}\noutput: {uri: out}\n"), {"compute.colour": 1})


def test_missing_output_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"output: required; set it .* --set output=\.\.\."):
        load_config(write(tmp_path, "input: {uri: in}\n"))


def test_overrides_parse_yaml_values_and_win(tmp_path):
    overrides = dict(parse_override(s) for s in ["batching.max_tokens_per_batch=9000", "model.normalize=false"])
    config = load_config(write(tmp_path, "input: {uri: in}\noutput: {uri: out}\n"), overrides)
    assert config.batching.max_tokens_per_batch == 9000
    assert config.model.normalize is False


def test_budget_below_max_length_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="max_tokens_per_batch .* below model.max_seq_length"):
        load_config(write(tmp_path, "input: {uri: in}\noutput: {uri: out}\nbatching: {max_tokens_per_batch: 100}\n"))


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="dotted.key=value"):
        parse_override("novalue")


def test_every_field_is_described():
    from sarashina_batch.config import field_paths

    assert [name for name, field in field_paths() if not field.description] == []


def test_readme_config_reference_is_current():
    # Regenerate with: python -c "from sarashina_batch.config import reference_table; print(reference_table())"
    from pathlib import Path

    from sarashina_batch.config import reference_table

    readme = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert reference_table() in readme


def test_a_removed_setting_says_what_replaced_it(tmp_path):
    import pytest

    from sarashina_batch.config import ConfigError, load_config

    path = tmp_path / "old.yaml"
    path.write_text("input: {uri: in}\noutput: {uri: out}\nbatching: {sort_window_rows: 4096}\n")
    with pytest.raises(ConfigError, match="batching.sort_window_rows: no longer a setting; .*input.rows_per_unit"):
        load_config(path)
    path.write_text("input: {uri: in}\noutput: {uri: out}\ncompute: {max_task_retries: 4, max_actor_restarts: 2}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    for key in ("compute.max_task_retries", "compute.max_actor_restarts"):
        assert f"{key}: no longer a setting; Ray Data" in str(raised.value)
    assert str(raised.value).count("compute.max_unit_attempts") == 2
