def test_dry_run_of_the_gpu_ablation_plans_phi1_small_shaped_arms(cli, tmp_path):
    result = cli("run", "ablation-gpu", "--dry-run", "--out", str(tmp_path / "run"), COLUMNS="250")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("eval.scaling") == 18 and "c_tmpl_s2" in result.stderr
    assert not (tmp_path / "run").exists()
