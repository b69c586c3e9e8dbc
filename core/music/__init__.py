"""Music for a mood: catalogs, the local and Spotify recommenders, feedback, the songs service.

    service = SongsService(settings, Recommender(load_catalog(path)), FeedbackStore())
    songs, note = service.songs_for_mood("ana", probabilities, "uplift", use_spotify=True)

    songs            SongsService: what the pages call; local catalog or Spotify, the fallback
                     note, the mood history, one Spotify client reused across calls
    catalog          load_catalog, CatalogError: read and normalise catalog CSVs
                     (`python -m core.music.catalog {info,label}`)
    moods            train_mood_model, label_moods: moods for unlabelled tracks from features
    targets          STRATEGIES and every tuning table; emotion probabilities -> feature targets
    tracks           Recommendation: one recommended track and its Spotify links
    recommender      Recommender: ranks a local catalog (`python -m core.music.recommend`)
    clusters         Clustering: k-means clusters behind "more like this"
    feedback         FeedbackStore, Preference: thumbs and mood history in SQLite
    spotify_client   SpotifyClient, SpotifyUnavailable: HTTP, retries, token, result cache
    spotify_ranking  SpotifyRecommender, recommend_with_fallback: ranking Spotify search results
                     (`python -m core.music.spotify {probe,recommend}`)
    playlists        to_m3u8, to_xspf, to_csv, tracks_from_frame: songs as playlist files (UTF-8)
    spotify_playlists  SpotifyPlaylists, PlaylistError, PendingLogins: a private playlist in the
                     listener's own Spotify account (authorization code with PKCE)

No streamlit here. Names import lazily: `import core.music` loads neither pandas, scikit-learn
nor spotipy until a name that needs them is used.
"""

from core.lazy import lazy_exports

_WHERE = {
    "SongsService": "songs",
    "Songs": "songs",
    "CatalogError": "catalog",
    "load_catalog": "catalog",
    "label_moods": "moods",
    "train_mood_model": "moods",
    "STRATEGIES": "targets",
    "Recommendation": "tracks",
    "Recommender": "recommender",
    "Clustering": "clusters",
    "FeedbackStore": "feedback",
    "Preference": "feedback",
    "SpotifyClient": "spotify_client",
    "SpotifyUnavailable": "spotify_client",
    "SpotifyRecommender": "spotify_ranking",
    "recommend_with_fallback": "spotify_ranking",
    "to_m3u8": "playlists",
    "to_xspf": "playlists",
    "to_csv": "playlists",
    "tracks_from_frame": "playlists",
    "SpotifyPlaylists": "spotify_playlists",
    "PlaylistError": "spotify_playlists",
    "PendingLogins": "spotify_playlists",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
