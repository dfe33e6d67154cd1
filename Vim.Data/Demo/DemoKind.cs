namespace Vim.Data.Demo;

/// <summary>Which real dataset format the demo data imitates.</summary>
public enum DemoKind
{
    /// <summary>COCO instances: annotations/instances_{train,val}.json + train/ and val/ images.</summary>
    Coco,
    /// <summary>ADEChallengeData2016: images/{training,validation}/*.jpg + annotations/…/*.png.</summary>
    Ade,
}
