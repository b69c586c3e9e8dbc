"""Analytics: the tables and plotly figures of the analyst pages, and the live/photo charts.

    explorer            the tracks in view: catalog facts, filters, search, track table, groups
    explorer_stats      per-group counts, histograms, correlations, yearly bands, PCA map, profiles
    explorer_figures    the Music Explorer's plotly figures
    comparison          model-card tables, the README's table, every model on one face
                        (`python -m core.analytics.comparison` prints the README's table)
    comparison_figures  the Model Comparison's plotly figures and presenter slides
    charts              the chart toolbar's config; the live and photo pages' emotion charts

Model cards themselves are read by core.emotion.cards. No streamlit here. Names import lazily:
`import core.analytics` loads neither pandas nor plotly until a name that needs them is used.
"""

from core.lazy import lazy_exports

_WHERE = {
    "FilterOptions": "explorer",
    "Filters": "explorer",
    "Grouping": "explorer",
    "apply_filters": "explorer",
    "catalog_fingerprint": "explorer",
    "filter_options": "explorer",
    "group_tracks": "explorer",
    "search_tracks": "explorer",
    "summarise": "explorer",
    "table_frame": "explorer",
    "TrackMap": "explorer_stats",
    "composition": "explorer_stats",
    "correlation_matrix": "explorer_stats",
    "feature_histograms": "explorer_stats",
    "group_profiles": "explorer_stats",
    "track_map": "explorer_stats",
    "yearly_features": "explorer_stats",
    "composition_figure": "explorer_figures",
    "correlation_figure": "explorer_figures",
    "histogram_figure": "explorer_figures",
    "map_figure": "explorer_figures",
    "radar_figure": "explorer_figures",
    "years_figure": "explorer_figures",
    "confusion_frame": "comparison",
    "history_frame": "comparison",
    "markdown_table": "comparison",
    "per_class_frame": "comparison",
    "predict_every_model": "comparison",
    "summary_table": "comparison",
    "Slide": "comparison_figures",
    "confusion_figure": "comparison_figures",
    "overview_figure": "comparison_figures",
    "per_class_figure": "comparison_figures",
    "predictions_figure": "comparison_figures",
    "presenter_layout": "comparison_figures",
    "slides": "comparison_figures",
    "speed_figure": "comparison_figures",
    "training_figure": "comparison_figures",
    "emotion_bars": "charts",
    "emotion_timeline": "charts",
    "figure_config": "charts",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
