"""Ratings as recommendation data: likes in time order, leave-last-out cases, items held out for cold start, item
text, and one-line errors naming the file and line of what is wrong."""

import pytest

from aigc.core.errors import UserError
from aigc.data.ratings import RatingsConfig, held_out, read_ratings
from conftest import write_movielens


@pytest.fixture
def folder(tmp_path):
    return write_movielens(tmp_path / "ml")


def ratings_of(folder, **options):
    return read_ratings(RatingsConfig(name=f"movielens:{folder}", **options))


def test_likes_are_the_ratings_at_or_above_the_threshold_oldest_first(folder):
    ratings = ratings_of(folder, cold_items=0.0)
    first = ratings.users.index("1")
    ids = [ratings.catalogue.ids[i - 1] for i in ratings.liked[first]]
    assert ids == [str(100 + 10 + (1 + step) % 10) for step in range(8)]  # user 1: comedy, from movie 112
    assert len(ratings.rated[first]) == 10  # the two 2-star ratings are rated, not liked
    strict = ratings_of(folder, cold_items=0.0, min_rating=5.0)
    assert len(strict.liked[first]) == 4


def test_ties_in_time_keep_the_file_s_order(tmp_path):
    folder = write_movielens(tmp_path / "ml", users=1)
    lines = (folder / "ratings.csv").read_text().splitlines()
    same_time = [",".join(line.split(",")[:3] + ["5"]) for line in lines[1:]]
    (folder / "ratings.csv").write_text("\n".join([lines[0], *same_time]) + "\n")
    ratings = ratings_of(folder, cold_items=0.0)
    ids = [ratings.catalogue.ids[i - 1] for i in ratings.liked[0]]
    assert ids == [line.split(",")[1] for line in same_time if float(line.split(",")[2]) >= 4]


def test_leave_last_out_cases_and_training_histories(folder):
    ratings = ratings_of(folder, cold_items=0.0)
    validation, test = ratings.cases("validation"), ratings.cases("test")
    assert len(validation) == len(test) == len(ratings.users)
    for user, history, target in zip(test.users, test.histories, test.targets, strict=True):
        assert (*history, target) == ratings.liked[user]
    for user, history, target in zip(validation.users, validation.histories, validation.targets, strict=True):
        assert (*history, target) == ratings.liked[user][:-1]
    assert ratings.training_histories() == [liked[:-2] for liked in ratings.liked]


def test_cold_items_never_train_and_each_like_of_one_is_a_cold_case(folder):
    ratings = ratings_of(folder, cold_items=0.2)
    likes = {item: sum(item in liked for liked in ratings.liked) for item in range(1, 31)}
    eligible = [item for item, count in likes.items() if count >= 5]
    assert len(ratings.cold) == round(0.2 * len(eligible)) > 0
    assert ratings.cold <= set(eligible)
    trained = {item for history in ratings.training_histories() for item in history}
    assert not trained & ratings.cold
    cold = ratings.cases("cold")
    assert len(cold) == sum(likes[item] for item in ratings.cold)
    assert set(cold.targets) == ratings.cold
    assert all(not set(history) & ratings.cold for history in cold.histories)
    assert held_out(ratings.liked, 0.2) == held_out(ratings.liked, 0.2) == ratings.cold  # a fixed seed


def test_a_user_whose_last_like_is_cold_is_judged_on_the_last_warm_one(folder):
    ratings = ratings_of(folder, cold_items=0.2)
    user = next(u for u, liked in enumerate(ratings.liked) if liked[-1] in ratings.cold)
    warm = [item for item in ratings.liked[user] if item not in ratings.cold]
    test = ratings.cases("test")
    at = test.users.index(user)
    assert test.targets[at] == warm[-1] and test.histories[at] == tuple(warm[:-1])


def test_an_item_rated_again_counts_once_at_its_latest_like(tmp_path):
    folder = write_movielens(tmp_path / "ml", users=1)
    with (folder / "ratings.csv").open("a") as f:
        f.write("1,111,5.0,9999999\n")  # user 1's second like, rated again last
    ratings = ratings_of(folder, cold_items=0.0)
    ids = [ratings.catalogue.ids[i - 1] for i in ratings.liked[0]]
    assert ids.count("111") == 1 and ids[-1] == "111"


def test_item_text_holds_title_genres_and_the_most_given_tags(folder):
    catalogue = ratings_of(folder).catalogue
    assert catalogue.texts[0] == "Action Film 0 (2000) | Action, Film | explosions, car chase"
    assert catalogue.texts[10] == "Comedy Film 10 (2010) | Comedy, Film | funny"
    assert catalogue.titles[28:] == ("Twin (1990)", "Twin (2000)")
    assert ratings_of(folder, tags=0).catalogue.texts[0] == "Action Film 0 (2000) | Action, Film"


HEADER = "userId,movieId,rating,timestamp\n"


@pytest.mark.parametrize(
    "file, text, message",
    [
        ("ratings.csv", "userId,movieId,stars\n1,100,5\n", "no column 'rating', 'timestamp'"),
        ("ratings.csv", HEADER + "1,100,five,3\n", ":2: rating 'five' is not a number"),
        ("ratings.csv", HEADER + "1,100,5,yesterday\n", ":2: timestamp 'yesterday' is not a number"),
        ("ratings.csv", HEADER + "1,100,nan,3\n", ":2: rating 'nan' is not a number"),
        ("ratings.csv", HEADER + "1,999,5,3\n", ":2: movie '999' is not in movies.csv"),
        ("ratings.csv", HEADER + "1,100,2,3\n", "no rating reaches --min-rating 4; lower it"),
        ("ratings.csv", HEADER + "1,100\n", ":2: 2 fields where the header has 4"),
        ("ratings.csv", None, "no ratings.csv in"),
        ("movies.csv", "movieId,title\n", "no column 'genres'"),
        ("ratings.csv", HEADER.encode() + b"1,\xff,5,3\n", "not UTF-8"),
    ],
)
def test_bad_files_are_named_in_one_line(folder, file, text, message):
    if text is None:
        (folder / file).unlink()
    elif isinstance(text, bytes):
        (folder / file).write_bytes(text)
    else:
        (folder / file).write_text(text)
    with pytest.raises(UserError, match=message.replace("(", r"\(")) as error:
        ratings_of(folder)
    assert "\n" not in str(error.value)


def test_a_data_set_name_it_does_not_know_is_refused():
    with pytest.raises(UserError, match="choose movielens or movielens:DIR"):
        read_ratings(RatingsConfig(name="netflix"))
