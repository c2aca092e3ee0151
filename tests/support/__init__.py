"""What the tests share: configs, corpora, servers on loopback, scenarios run in processes
of their own. Test modules import from here, never from each other or from conftest."""

import numpy as np

MAX_LEN = 64  # model.max_seq_length of the test configs: short, so that truncation happens


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def job_config(input_uri: str, output_uri: str, model_path: str, **sections):
    """A RunConfig for tests: CPU, one actor, small budgets."""
    from sarashina_batch.config import RunConfig

    raw = {
        "input": {"uri": input_uri, "text_column": "text", "rows_per_unit": 40},
        "output": {"uri": output_uri, "embedding_dtype": "float32"},
        "model": {"name": model_path, "max_seq_length": MAX_LEN},
        "batching": {"max_tokens_per_batch": 512},
        "compute": {"gpus_per_actor": 0, "max_actors": 1, "cpus_per_actor": 1, "cpus_per_read_task": 0.5},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return RunConfig.model_validate(raw)


def s3_job_config(bucket: str, model_path: str, storage_options: dict, rows_per_unit: int):
    """job_config for s3://bucket/corpus -> s3://bucket/out (doc_id ids), both through one store."""
    return job_config(
        f"s3://{bucket}/corpus",
        f"s3://{bucket}/out",
        model_path,
        input={"id_column": "doc_id", "rows_per_unit": rows_per_unit, "storage_options": storage_options},
        output={"storage_options": storage_options},
    )
