"""The clusters map in the report: two panels (by cluster, by stance), the clusters' top terms."""

from __future__ import annotations

from collections import Counter

from gettok.db import session_scope
from gettok.tasks.report.analyses import queries, tables
from gettok.tasks.report.analyses.clusters import (
    MIN_MAP_VIDEOS,
    NOISE_CLUSTER,
    ClusterMap,
    cluster_map,
)
from gettok.tasks.report.analyses.drawing import caption, plt, save, titled
from gettok.tasks.report.analyses.section import AnalysisContext, Section
from gettok.tasks.report.figures import LABEL_COLOURS, OTHER_COLOURS


def clusters_section(ctx: AnalysisContext) -> Section:
    found = cluster_map(ctx)
    if found is None:
        why = f"Too few videos with text yet for a map (it needs {MIN_MAP_VIDEOS} or more)."
        return Section("clusters", "Clusters", why)
    sizes = Counter(found.clusters)
    order = sorted(sizes, key=lambda c: (c == NOISE_CLUSTER, -sizes[c], c))
    rows = [
        [_name(c), sizes[c], ", ".join(found.terms.get(c, [])) or "(no distinctive terms)"]
        for c in order
    ]
    csv_clusters = tables.write_csv(
        ctx.out_dir / "clusters.csv", ["cluster", "videos", "top_terms"], rows
    )
    points = [
        [v, round(float(x), 4), round(float(y), 4), _name(c), s]
        for v, (x, y), c, s in zip(
            found.video_ids, found.xy, found.clusters, found.stances, strict=True
        )
    ]
    csv_map = tables.write_csv(
        ctx.out_dir / "cluster_map.csv", ["video_id", "x", "y", "cluster", "stance"], points
    )
    with session_scope(ctx.url) as session:
        _, first, last = queries.campaign_extent(session, ctx.campaign)
    subtitle = caption(len(found.video_ids), first, last, "sampled videos")
    path = draw(found, ctx.out_dir / "clusters.png", subtitle)
    p = found.provenance
    text = "\n\n".join(
        [
            f"A seeded sample of {p['videos']:,} videos placed by UMAP from their text embeddings "
            f"({p['embeddings']}; transcript + description + caption), clustered by HDBSCAN "
            f"(minimum cluster size {p['min_cluster_size']}), seed {p['seed']}.",
            "![clusters map](clusters.png)",
            tables.markdown(["cluster", "videos", "top terms"], rows),
            f"Tables: [clusters.csv]({csv_clusters.name}), [cluster_map.csv]({csv_map.name}). "
            f"Provenance: `{p}`",
        ]
    )
    return Section("clusters", "Clusters", text, [path], [csv_clusters, csv_map], p)


def _name(cluster: int) -> str:
    return "noise" if cluster == NOISE_CLUSTER else f"C{cluster + 1}"


def cluster_colour(i: int):
    """Strong, distinct colours (tab10) for the first ten clusters, then tab20's lighter ones;
    light grey is kept for noise."""
    return plt.get_cmap("tab10")(i) if i < 10 else plt.get_cmap("tab20")(2 * (i - 10) % 20 + 1)


def _cluster_number(value: str) -> int | None:
    return int(value[1:]) if value.startswith("C") and value[1:].isdigit() else None


def _order(value: str):
    """Clusters by number (C2 before C10), labels by name, noise and unlabelled last."""
    return (value in ("noise", "(none)"), _cluster_number(value) or 0, value)


def legend_name(value: str, found: ClusterMap) -> str:
    """A cluster's name with its top three terms (up to ten clusters: the table has them all);
    stance labels as they are."""
    if value == "(none)":
        return "not labelled"
    if _cluster_number(value) is not None and len(found.terms) <= 10:
        terms = found.terms.get(_cluster_number(value) - 1, [])[:3]
        return f"{value}: {', '.join(terms)}" if terms else value
    return value


def draw(found: ClusterMap, path, subtitle: str = ""):
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.8))
    xs, ys = found.xy[:, 0], found.xy[:, 1]
    for ax, values, title in (
        (axes[0], [_name(c) for c in found.clusters], "by cluster (HDBSCAN)"),
        (axes[1], found.stances, "by stance"),
    ):
        extra = iter(OTHER_COLOURS * 4)
        for i, value in enumerate(sorted(set(values), key=_order)):
            chosen = [j for j, v in enumerate(values) if v == value]
            if value in ("noise", "(none)"):
                colour = "#d9d9d9"
            elif ax is axes[1]:
                colour = LABEL_COLOURS.get(value) or next(extra)
            else:
                colour = cluster_colour(i)
            label = legend_name(value, found) if ax is axes[0] else value
            label = "not labelled" if value == "(none)" else label
            ax.scatter(xs[chosen], ys[chosen], s=12, alpha=0.8, color=colour, label=label)
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, frameon=True, framealpha=0.85, markerscale=1.5, loc="best")
        titled(ax, f"Videos by text embedding, {title}", subtitle)
    return save(fig, path)
