"""data.max_sources: a random share of the distinct sources, each with all of its pairs."""

from tf_distill import config as config_lib
from tf_distill.pipeline import load_pairs


def test_max_sources_keeps_every_reference_of_the_chosen_sources(tmp_path):
    lines = []
    for i in range(40):
        for j in range(1 + i % 3):  # sources with 1, 2 or 3 translations
            lines.append(f"source {i}.\ttarget {i}-{j}.")
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    everything = {"source": "tsv", "path": str(path)}
    chosen = {}
    for value, expected in ((10, 10), (0.25, 10), (0.5, 20)):
        config = config_lib.from_dict({"data": {**everything, "max_sources": value}})
        pairs = load_pairs(config)
        sources = {s for s, _ in pairs}
        assert len(sources) == expected
        for source in sources:
            i = int(source.split()[1].rstrip("."))
            assert sorted(t for s, t in pairs if s == source) == [
                f"target {i}-{j}." for j in range(1 + i % 3)
            ]
        assert load_pairs(config) == pairs  # seeded
        chosen[value] = sources
    other_seed = config_lib.from_dict({"data": {**everything, "max_sources": 10, "seed": 1}})
    assert {s for s, _ in load_pairs(other_seed)} != chosen[10]
