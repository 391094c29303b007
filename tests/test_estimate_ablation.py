def test_dry_run_of_phi1_recipe_prints_plan_and_cost(cli, tmp_path):
    result = cli("run", "phi-1", "--dry-run", "--out", str(tmp_path / "run"), COLUMNS="250")
    assert result.returncode == 0, result.stderr
    # phi-1: 1.42B parameters (as microsoft/phi-1), 36k steps x 1024 x 2048 tokens
    assert "1,418M params, 75.50B tokens" in result.stderr
    assert "training total ≈ 1,489.5 A100-hours" in result.stderr
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


def test_dry_run_of_the_gpu_ablation_plans_phi1_small_shaped_arms(cli, tmp_path):
    result = cli("run", "ablation-gpu", "--dry-run", "--out", str(tmp_path / "run"), COLUMNS="250")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("eval.scaling") == 18 and "c_tmpl_s2" in result.stderr
    assert not (tmp_path / "run").exists()
