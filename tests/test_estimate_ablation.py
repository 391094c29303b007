import json

from syllabus.config import StageContext
from syllabus.report.ablation import AblationParams, ablation_stage
from syllabus.summaries import BenchmarkScores, EvalSummary


def test_ablation_table_and_conclusion(tmp_path):
    state = tmp_path / ".state"
    state.mkdir()
    for name, nll in (("eval_a", 2.5), ("eval_b", 2.1)):
        summary = EvalSummary(benchmarks={"humaneval": BenchmarkScores(pass_at_k={1: 0.0}, nll=nll),
                                          "mbpp": BenchmarkScores(pass_at_k={1: 0.0}, nll=nll + 0.1)})
        (state / f"{name}.json").write_text(json.dumps({"status": "done", "summary": summary.dump()}))
    result = ablation_stage(AblationParams(), {"unfiltered": tmp_path / "eval_a", "filtered": tmp_path / "eval_b"},
                            tmp_path / "ablation", StageContext(run_dir=tmp_path, stage="ablation"))
    assert [arm.arm for arm in result.arms] == ["unfiltered", "filtered"]
    assert result.arms[1].benchmarks["humaneval"].nll == 2.1 and result.arms[0].benchmarks["mbpp"].nll == 2.6
    assert result.conclusion.startswith("best humaneval nll: filtered")
    assert json.loads((tmp_path / "ablation" / "ablation.json").read_text()) == result.dump()
