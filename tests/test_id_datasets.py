"""Reading id datasets (pipeline.ids): the formats people share, and damage found before anything is spent."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

import pipeline.idset
from pipeline.contract import SPILL_FOLDER, TWEET_IDS
from pipeline.formats import ImportReport, iter_collection
from pipeline.ids import ROUNDED_MIN_COUNT, IdFileError, newest_id, read_ids
from pipeline.package import build_package
from pipeline.summarise import summarise_posts


@pytest.fixture
def real_ids(real_data) -> list[str]:
    """Every distinct post id of the real recorded posts, in file order: the 2021 v2 pages (19 digits) and
    the 2018 v1.1 lines (18 digits, where more ids end in 00), with the posts they reference."""
    seen: dict[str, None] = {}
    for name in ("v2-pages-twarc-network.jsonl", "v2-pages-noflat.jsonl"):
        for line in (real_data / name).read_text().splitlines():
            page = json.loads(line)
            for post in page.get("data", []) + page.get("includes", {}).get("tweets", []):
                seen[post["id"]] = None
                for ref in post.get("referenced_tweets", []):
                    seen[ref["id"]] = None
    for line in (real_data / "v1-streaming-lines.jsonl").read_text().splitlines():
        post = json.loads(line)
        for item in (post, post.get("retweeted_status"), post.get("quoted_status")):
            if item:
                seen[item["id_str"]] = None
    return list(seen)


def read(tmp_path: Path, content: str | bytes, name: str = "dataset.txt"):
    source = tmp_path / name
    if isinstance(content, str):
        source.write_text(content, encoding="utf-8")
    else:
        source.write_bytes(content)
    out = tmp_path / "run" / "ids-requested.txt"
    report = read_ids(source, out)
    return report, out.read_text().splitlines()


def excel_rounded(post_id: str) -> str:
    """What a spreadsheet keeps of an id it took for a number: 15 significant digits, then zeros."""
    digits = len(post_id)
    return str(round(int(post_id), -(digits - 15))) if digits > 15 else post_id


# --- formats ----------------------------------------------------------------------------------------


def test_a_text_file_gives_its_ids_once_each_in_first_seen_order(tmp_path, real_ids):
    lines = real_ids[:5] + [real_ids[1], "", real_ids[5], real_ids[0]]
    report, ids = read(tmp_path, "\n".join(lines) + "\n")

    assert ids == real_ids[:6]
    assert (report.kind, report.ids, report.duplicates, report.blank, report.rows) == ("text", 6, 2, 1, 8)
    assert report.header is None and not report.should_refuse and report.problems() == []
    assert report.summary() == "dataset.txt (text): 6 ids to look up, 2 duplicates dropped, 1 empty row skipped."


def test_a_csv_with_a_header_is_read_from_its_id_column_even_when_it_is_not_the_first(tmp_path, real_ids):
    # DocNow's Hydrator writes its CSV with the id several columns in; text with commas and line breaks is quoted.
    rows = ["created_at,text,id,user"] + [
        f'2021-06-26,"text, with a comma\nand a line break",{post_id},someone' for post_id in real_ids[:4]
    ]
    report, ids = read(tmp_path, "\r\n".join(rows) + "\r\n", name="hydrated.csv")

    assert ids == real_ids[:4]
    assert (report.kind, report.header, report.column) == ("csv", ["created_at", "text", "id", "user"], 2)


def test_twarc_csv_and_a_first_column_without_header_name_work(tmp_path, real_ids):
    report, ids = read(tmp_path, "tweet id;lang\n" + "".join(f"{i};en\n" for i in real_ids[:3]))
    assert ids == real_ids[:3] and report.column == 0 and report.kind == "csv"

    report, ids = read(tmp_path, "".join(f"{i}\tsomething\n" for i in real_ids[:3]))
    assert ids == real_ids[:3] and report.header is None


def test_a_gzipped_file_and_a_utf16_file_from_excel_are_read(tmp_path, real_ids):
    report, ids = read(tmp_path, gzip.compress(("id\n" + "\n".join(real_ids[:20])).encode()), name="ids.csv.gz")
    assert ids == real_ids[:20] and report.kind == "gzip text"

    report, ids = read(tmp_path, ("\ufeffid\r\n" + "\r\n".join(real_ids[:7])).encode("utf-16-le"), name="u16.txt")
    assert report.kind == "text"  # read despite the name
    report, ids = read(tmp_path, "\ufeffid\r\n".encode("utf-16") + "\r\n".join(real_ids[:7]).encode("utf-16-le"))
    assert ids == real_ids[:7]


def test_a_spreadsheets_exact_text_formula_is_taken_as_the_id_it_holds(tmp_path, real_ids):
    report, ids = read(tmp_path, f'="{real_ids[0]}"\n{real_ids[1]}\n', name="ids.csv")
    assert ids == real_ids[:2] and not report.should_refuse


def test_a_real_dnflow_package_gives_its_tweet_ids_and_is_checked_against_its_manifest(tmp_path, real_data):
    # A package as the workflow makes it: the real summary pass over real pages, then the real bag.
    folder = tmp_path / "search-7"
    folder.mkdir()
    posts = iter_collection(real_data / "v2-pages-noflat.jsonl", report=ImportReport())
    summarise_posts(posts, folder, sample_size=3, seed="7", make_facts=lambda facts: {})
    zipped = build_package(folder, {"Source": "test"}, {"id": 7, "status": "finished"})
    expected = (folder / TWEET_IDS).read_text().splitlines()
    assert len(expected) == 100

    report = read_ids(zipped, tmp_path / "run" / "ids.txt", name="search-7.zip")
    assert (report.kind, report.ids, report.package_checksum) == ("dnflow package", 100, "ok")
    assert (tmp_path / "run" / "ids.txt").read_text().splitlines() == expected
    assert not report.should_refuse

    # The same package with one id changed no longer matches its manifest: refusable, and said why.
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(zipped) as original, zipfile.ZipFile(changed, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename.endswith("data/" + TWEET_IDS):
                data = data.replace(expected[0].encode(), expected[0][:-1].encode() + b"7")
            copy.writestr(item, data)
    report = read_ids(changed, tmp_path / "run" / "ids.txt", name="changed.zip")
    assert report.package_checksum == "mismatch" and report.should_refuse
    assert "does not match the checksum in the package's manifest" in report.problems()[0]


def test_a_zip_that_is_not_a_package_and_an_excel_workbook_are_refused_with_what_to_do(tmp_path):
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("ids.txt", "1408876829491015681\n")
    with pytest.raises(IdFileError, match=r"not a dnflow package: it has no data/tweet-ids\.txt.*unzip"):
        read_ids(other, tmp_path / "ids.txt")

    workbook = tmp_path / "ids.xlsx"
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(IdFileError, match=r"Excel workbook.*Save the sheet as CSV.*Text"):
        read_ids(workbook, tmp_path / "ids.txt", name="ids.xlsx")
    assert not (tmp_path / "ids.txt").exists()


def test_a_file_with_nothing_usable_is_refused_and_writes_nothing(tmp_path):
    for content, said in (
        ("", "holds no ids: it is empty."),
        ("tweet_id\n\n\n", "holds no ids: it is empty but for its header."),
        ("1.40888E+18\n1.40887E+18\n", "holds no usable id: all 2 rows are damaged."),
    ):
        with pytest.raises(IdFileError) as refused:
            read(tmp_path, content)
        assert said in str(refused.value)
        assert not (tmp_path / "run" / "ids-requested.txt").exists()
    assert "scientific notation" in str(refused.value) and refused.value.report.damaged == {"scientific-notation": 2}


# --- damage, explained with line numbers ------------------------------------------------------------------


def test_damaged_ids_are_counted_and_explained_with_their_line_numbers_and_the_file_refused(tmp_path, real_ids):
    lines = [
        "id",  # 1
        real_ids[0],  # 2
        "1.40887682949102E+18",  # 3: what a spreadsheet shows
        real_ids[1] + ".0",  # 4: a float written by a program
        "1,408,876,829,491,015,681",  # 5 (quoted below)
        "0" + real_ids[2],  # 6
        "12345678901234567890",  # 7
        "https://twitter.com/someone/status/" + real_ids[3],  # 8
        "1.40887E+18",  # 9
        real_ids[4],  # 10
    ]
    content = "\n".join(f'"{line}"' if "," in line else line for line in lines) + "\n"
    report, ids = read(tmp_path, content, name="shared.csv")

    assert ids == [real_ids[0], real_ids[4]]
    assert report.damaged == {
        "scientific-notation": 2,
        "decimal": 1,
        "digit-grouping": 1,
        "leading-zero": 1,
        "too-long": 1,
        "not-a-number": 1,
    }
    assert report.examples["scientific-notation"] == [(3, "1.40887682949102E+18"), (9, "1.40887E+18")]
    assert report.examples["decimal"] == [(4, real_ids[1] + ".0")]
    assert report.should_refuse
    problems = report.problems()
    assert problems[0] == (
        "shared.csv: 2 ids in scientific notation (line 3: 1.40887682949102E+18; line 9: 1.40887E+18): "
        "a spreadsheet took the ids for numbers and kept only about 15 significant digits, so the real ids are "
        "lost. Export the ids again from the original data, not from the spreadsheet, or import the file into "
        "the spreadsheet with the id column set to Text."
    )
    assert f"1 id with a decimal part (line 4: {real_ids[1]}.0)" in problems[1]
    assert "the number after /status/" in problems[-1]
    assert report.summary().startswith("shared.csv (text): 2 ids to look up, 7 damaged rows. shared.csv: 2 ids")
    # The whole file is refused, not the damaged rows left out: it says so first, then a paragraph a problem.
    assert report.refusal() == [
        "shared.csv was refused: nothing in it was looked up, and nothing was spent.",
        *problems,
    ]
    assert not any("left out" in problem for problem in problems)
    assert json.loads(json.dumps(report.as_dict()))["should_refuse"] is True


def test_ids_a_spreadsheet_rounded_are_detected_and_real_ids_are_not(tmp_path, real_ids):
    # Real ids, about a thousand of them: about 1 in 50 end in 00, which must not raise the alarm.
    report, ids = read(tmp_path, "\n".join(real_ids) + "\n")
    assert len(ids) == len(real_ids) > 950
    assert 0 < report.ending_00 < 0.05 * report.long_ids
    assert not report.looks_rounded and not report.should_refuse

    # The same ids after a spreadsheet: 15 significant digits, then zeros. Nearly all end in 0000,
    # many collide, and nothing else looks wrong.
    rounded = [excel_rounded(post_id) for post_id in real_ids]
    report, ids = read(tmp_path, "tweet_id\n" + "\n".join(rounded) + "\n", name="from-excel.csv")
    assert report.damaged == {} and report.duplicates > 0
    assert report.looks_rounded and report.should_refuse
    assert report.examples["ending-00"][0] == (2, rounded[0])
    [problem] = report.problems()
    assert problem.startswith(f"{report.ending_00:,} of the {report.long_ids:,} long ids in from-excel.csv end in 00 (")
    assert "line 2: " + rounded[0] in problem and "cannot be repaired" in problem


def test_ids_a_spreadsheet_rounded_beside_ids_it_wrote_in_scientific_notation_are_named_too(tmp_path, real_ids):
    # What the tester found: the E+18 line was named, the rounded id on another line was not.
    lines = [real_ids[0], "1.40888E+18", real_ids[1], "1408876829491010000", real_ids[2]]
    report, _ = read(tmp_path, "\n".join(lines) + "\n", name="shared.csv")

    assert report.should_refuse
    said = " ".join(report.problems())
    assert "line 2: 1.40888E+18" in said
    assert "shared.csv: 1 id with only zeros after the 15th digit (line 4: 1408876829491010000)" in said
    assert "With ids in scientific notation in the same file, the same spreadsheet very likely rounded" in said


def test_a_real_id_ending_in_0000_is_not_called_rounded_without_a_sign_of_a_spreadsheet(tmp_path, real_ids):
    report, ids = read(tmp_path, "\n".join([*real_ids[:20], "1408876829491010000"]) + "\n")
    assert ids[-1] == "1408876829491010000" and report.zero_filled == 1
    assert not report.should_refuse and report.problems() == []


def test_a_few_ids_ending_in_00_are_not_enough_to_raise_the_alarm(tmp_path, real_ids):
    ending = [i for i in real_ids if i.endswith("00")][: ROUNDED_MIN_COUNT - 1]
    report, _ = read(tmp_path, "\n".join(ending) + "\n")
    assert report.ending_00 == len(ending) == report.long_ids  # every one of them, but only 9
    assert not report.looks_rounded


# --- round trips and memory ------------------------------------------------------------------------------


def test_the_missing_ids_file_of_a_lookup_can_be_read_again(tmp_path, real_ids):
    missing = "tweet_id,reason\r\n" + "".join(f"{i},resource-not-found\r\n" for i in real_ids[:3])
    report, ids = read(tmp_path, missing, name="missing-ids.csv")
    assert ids == real_ids[:3] and report.header == ["tweet_id", "reason"]


def test_a_big_dataset_is_read_in_bounded_memory_by_spilling_the_ids_seen(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline.idset, "MEMORY_IDS", 1000)  # spill after 1,000 ids instead of 32,768
    base = 1408876829491015681
    ids = [str(base + 7 * n) for n in range(20_000)]
    lines = ids + ids[::3]  # a third of them again, after the spills
    report, written = read(tmp_path, "\n".join(lines) + "\n")

    assert written == ids
    assert (report.ids, report.duplicates) == (20_000, len(ids[::3]))
    assert not (tmp_path / "run" / SPILL_FOLDER).exists()  # the spill is removed


def test_newest_id_is_the_largest_id_of_a_list(tmp_path):
    (tmp_path / TWEET_IDS).write_text("1408876829491015681\n999\n1408876829491015699\n\n")
    assert newest_id(tmp_path / TWEET_IDS) == "1408876829491015699"
