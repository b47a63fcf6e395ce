"""How a question is read into the parts it asks."""

import pytest

from rag.questions import asked_kind, plan_question, question_parts, standing_parts


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("Who bought the firm, and when did the deal close?", ["Who bought the firm", "when did the deal close"]),
        ("What did the club pay and which player did it sign?", ["What did the club pay", "which player did it sign"]),
        # "and" joining two things of one question is not a second question
        ("Who were the winners and losers of the budget?", []),
        ("Which firm merged with its rival and when?", []),
    ],
)
def test_question_parts_split_only_a_second_question(question, parts):
    assert question_parts(question) == parts


@pytest.mark.parametrize(
    ("question", "second"),
    [
        ("In the Balco steroid case, in which month was a trial date set, and to what date was the hearing pushed back?",
         "In the Balco steroid case, to what date was the hearing pushed back"),
        ("The minister resigned in March. How much did he earn, and how long had he served?",
         "The minister resigned in March. How long had he served"),
        ("When the coach left, what was his record, and who replaced him?", "When the coach left, who replaced him"),
        # no lead-in: the question opens with what it asks
        ("How many copies did the game sell, and by how much did traffic grow?", "by how much did traffic grow"),
    ],
)
def test_the_second_part_carries_the_questions_lead_in(question, second):
    parts = standing_parts(question_parts(question))
    assert parts[1] == second
    assert parts[0] == question_parts(question)[0]


def test_a_bare_second_question_phrase_or_a_pronoun_is_asked_after_the_first_part():
    plan = plan_question("Where did the envoy's plane land, and on what day?")
    assert [p.standing for p in plan.parts] == [
        "Where did the envoy's plane land", "Where did the envoy's plane land: on what day"]
    assert [p.kind for p in plan.parts] == ["place", "time"]
    assert plan.parts[1].checked == plan.parts[1].standing  # its evidence must be about the landing
    plan = plan_question("Which firm bought the brewery, and how much did it pay?")
    assert plan.parts[1].standing == "Which firm bought the brewery: how much did it pay"
    one = plan_question("Who spoke first?")
    assert not one.two_part and one.parts[0].standing == one.parts[0].checked == "Who spoke first?"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How tall is Honda's upgraded robot?", "figure"),
        ("What was the new runway said to cost?", "figure"),
        ("When did the talks resume?", "time"),
        ("Which year was the label founded?", "time"),
        ("Who spoke first?", "name"),
        ("Where did the plane land?", "place"),
        ("In which city were the talks held?", "place"),
        # a clause of time before the question phrase is not the question
        ("When the Bank of England held rates, which economist spoke?", "name"),
        # the question phrase after a lead-in decides, not the lead-in's words
        ("Campaigners went to the High Court. Which judge was expected to rule?", "name"),
        ("The viewer who sued the network - which city does he live in?", "place"),
        ("Why did the minister resign?", None),
    ],
)
def test_the_kind_of_thing_a_question_asks_for_is_read_from_its_last_question_phrase(question, kind):
    assert asked_kind(question) == kind
