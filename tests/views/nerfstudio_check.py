"""Run inside the nerfstudio environment (``.venv-ns``) by ``test_views_nerfstudio.py``.

Finds every ``neurosim-*`` method through nerfstudio's plugin discovery (the
``nerfstudio.method_configs`` entry point), trains each for ``--iterations`` iterations on the CPU
on a Blender scene, evaluates one held-out image, and prints one JSON object
``{method: {"steps": ..., "loss": ..., "eval": {metric: value}}}`` on the last line.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--iterations", type=int, default=2)
    args = parser.parse_args()

    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.plugins.registry import discover_methods

    configs, _ = discover_methods()
    report: dict[str, dict[str, object]] = {}
    for name in sorted(n for n in configs if n.startswith("neurosim-")):
        config = copy.deepcopy(configs[name])
        config.data = Path(args.data)
        config.output_dir = Path(args.out)
        config.max_num_iterations = args.iterations
        config.machine.device_type = "cpu"
        config.vis = "tensorboard"
        config.viewer.quit_on_train_completion = True
        config.pipeline.datamanager.data = Path(args.data)
        config.pipeline.datamanager.dataparser = BlenderDataParserConfig(data=Path(args.data))
        config.pipeline.datamanager.train_num_rays_per_batch = 256
        config.pipeline.datamanager.eval_num_rays_per_batch = 256
        # 20 x 20 views: the evaluation renders a whole held-out image
        config.pipeline.datamanager.camera_res_scale_factor = 0.1
        config.pipeline.model.eval_num_rays_per_chunk = 4096
        config.set_timestamp()
        trainer = config.setup(local_rank=0, world_size=1)
        trainer.setup()
        trainer.train()
        loss = trainer.pipeline.get_train_loss_dict(step=args.iterations)[1]["rgb_loss"]
        metrics, images = trainer.pipeline.get_eval_image_metrics_and_images(step=args.iterations)
        report[name] = {
            "steps": args.iterations,
            "loss": float(loss),
            "eval": {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)},
            "image_shape": list(images["img"].shape),
            "lpips_module": any(
                "lpips" in type(m).__name__.lower() for m in trainer.pipeline.model.modules()
            ),
        }
        assert math.isfinite(report[name]["loss"])  # type: ignore[arg-type]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
