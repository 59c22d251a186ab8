import pytest
import torch
from prometheus_client import generate_latest

from aigc.compression import compress_checkpoint
from aigc.core.checkpoint import latest_checkpoint
from aigc.families.diffusion.config import DiffusionSampleConfig as SampleConfig
from aigc.families.gan.config import GANSampleConfig
from aigc.families.registry import generate, load_model
from aigc.models.compression import CompressionConfig
from aigc.serving.metrics import Metrics
from aigc.serving.service import Job, NotReady, QueueFull, Service


def test_merged_requests_draw_the_images_each_would_alone(diffusion_run):
    service = Service({"digits": latest_checkpoint(diffusion_run)}, Metrics(), queue_size=8, max_batch=64)
    with pytest.raises(NotReady, match="loading"):
        service.loaded()
    fast, slow = SampleConfig(steps=3), SampleConfig(steps=4)
    jobs = [
        Job("digits", fast, [0, 1, 2], [0, 1, 2]),
        Job("digits", slow, [3], [7]),
        Job("digits", fast, [5, 1], [3, 3]),
    ]
    futures = [service.submit(job) for job in jobs]  # queued before the worker starts, so it sees all three
    service.start()
    service.close()
    model, _ = load_model(diffusion_run)
    for job, future in zip(jobs, futures, strict=True):
        alone = generate(model, job.seeds, job.conditions, job.sample)
        assert torch.equal(future.result(timeout=0), alone)
    exposition = generate_latest(service.metrics.registry).decode()
    assert "aigc_batch_requests_count 2.0" in exposition  # the two steps=3 jobs shared one generate() call
    # (the images are counted by the route that answers them: tests/serving/test_server.py)


def test_a_full_queue_refuses_at_once_with_a_retry_time(diffusion_run):
    service = Service({"digits": latest_checkpoint(diffusion_run)}, Metrics(), queue_size=2)
    for seed in range(2):
        service.submit(Job("digits", SampleConfig(), [seed], [0]))
    with pytest.raises(QueueFull) as refused:
        service.submit(Job("digits", SampleConfig(), [9], [0]))
    assert refused.value.retry_after >= 1
    service.start()
    service.close()  # the two queued jobs are still answered
    with pytest.raises(NotReady, match="shutting down"):
        service.submit(Job("digits", SampleConfig(), [9], [0]))


def test_max_batch_splits_merges(diffusion_run):
    service = Service({"digits": latest_checkpoint(diffusion_run)}, Metrics(), queue_size=8, max_batch=4)
    futures = [service.submit(Job("digits", SampleConfig(steps=2), [s, s + 1, s + 2], [0, 0, 0])) for s in range(3)]
    service.start()
    service.close()
    assert all(f.result(timeout=0).shape == (3, 1, 8, 8) for f in futures)
    assert "aigc_batch_requests_count 3.0" in generate_latest(service.metrics.registry).decode()


def test_an_int8_model_is_served_like_any_other(mlp_gan_run, tmp_path):
    path = compress_checkpoint(mlp_gan_run, tmp_path / "int8", CompressionConfig(quantize="int8"), progress=False)
    service = Service({"mlp": path}, Metrics())
    future = service.submit(Job("mlp", GANSampleConfig(truncation=0.9), [1, 2], None))
    service.start()
    service.close()
    model, _ = load_model(path)
    assert torch.equal(future.result(timeout=0), generate(model, [1, 2], sample=GANSampleConfig(truncation=0.9)))
